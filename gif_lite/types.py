"""Type aliases shared by every module of gif_lite (and by the book's helpers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = [
    "Data",
    "Group",
    "LossFn",
    "MatVec",
    "Subset",
]

#: An ``(inputs, targets)`` pair of tensors: a training split, a test split, one batch.
Data = tuple[torch.Tensor, torch.Tensor]
#: A loss ``loss_fn(outputs, targets) -> batch mean`` (e.g. ``torch.nn.functional.cross_entropy``).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: A linear operator given by its product with a vector, ``v -> A v`` (e.g. a Hessian-vector product).
MatVec = Callable[[torch.Tensor], torch.Tensor]
#: A group of training examples: 1-D integer indices into the training data.
Group = torch.Tensor | Sequence[int]
#: A parameter subset ``P``: indices into the flat parameter vector (see :mod:`gif_lite.params`).
Subset = torch.Tensor | Sequence[int]
