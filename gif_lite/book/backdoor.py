"""Backdoor poisoning for the label-change experiment (the GIF paper's Table 3).

Used by: backdoor.

A *backdoor* (BadNets-style) attack stamps a small trigger on a fraction of the training images and
sets their label to a ``target`` class.  A model trained on the poisoned set classifies clean images
well but sends any triggered image to ``target``.  Undoing the attack is a *relabelling* task: give
the poisoned examples back their true labels and ask what retraining would do, which influence
estimators predict from the trained model (:func:`gif_lite.relabel_problem`).

* :func:`add_trigger` stamps a ``size x size`` checkerboard (``value`` on the squares whose row +
  column is even, 0 on the others) into the bottom-right corner of every image.
* :func:`poison` chooses a seeded fraction of the training examples among those *not* already of
  class ``target``, stamps the trigger on them and relabels them ``target``; it returns the
  poisoned data, the chosen indices and their true labels.
* :func:`attack_success_rate` is the share of triggered test images of the other classes that the
  model classifies as ``target``.
* ``gif_lite.second_order_relabel_influence`` is the second-order (in the group's share ``p``) term of
  the Newton step for relabelling, the relabelling analogue of Basu et al.'s group influence.
* The paper-scale setting (MNIST, a TinyNet-like CNN) is ``gif_lite.book.configs.paper_config("mnist-tinynet")``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..train import predict
from ..types import Data

__all__ = [
    "add_trigger",
    "attack_success_rate",
    "poison",
    "trigger_pattern",
]


def trigger_pattern(size: int = 4, value: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``size x size`` checkerboard: ``value`` where row + column is even, 0 elsewhere."""
    if size < 1:
        raise ValueError(f"trigger size must be at least 1, got {size}")
    rows = torch.arange(size).unsqueeze(1)
    cols = torch.arange(size).unsqueeze(0)
    return ((rows + cols) % 2 == 0).to(dtype) * value


def add_trigger(images: torch.Tensor, size: int = 4, value: float = 1.0) -> torch.Tensor:
    """A copy of ``images`` (``... x H x W``, e.g. N x C x H x W) with the checkerboard in the bottom-right corner.

    Every channel of every image gets the same pattern; ``images`` is left unchanged.
    """
    if images.dim() < 2:
        raise ValueError(f"images must have at least 2 dimensions (H x W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"a {size}x{size} trigger does not fit into {height}x{width} images")
    out = images.clone()
    out[..., height - size :, width - size :] = trigger_pattern(size, value, images.dtype)
    return out


def poison(
    data: Data,
    fraction: float,
    target: int,
    generator: torch.Generator | None = None,
    *,
    size: int = 4,
    value: float = 1.0,
) -> tuple[Data, torch.Tensor, torch.Tensor]:
    """Stamp the trigger on ``round(fraction * n)`` training examples and relabel them ``target``.

    The examples are drawn uniformly without replacement (with ``generator``, seeded 0 when None)
    among those whose label is not ``target``.  Returns ``((inputs, targets), indices, true_labels)``:
    new tensors with the poisoned examples changed, the sorted indices of those examples, and their
    original labels (``true_labels[i]`` belongs to ``indices[i]``).  ``data`` is left unchanged.
    """
    inputs, targets = data
    n = len(targets)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    candidates = (targets != target).nonzero().flatten()
    count = round(fraction * n)
    if count < 1:
        raise ValueError(f"fraction {fraction} of {n} examples poisons nothing")
    if count > candidates.numel():
        raise ValueError(
            f"cannot poison {count} examples: only {candidates.numel()} are not of class {target}"
        )
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    chosen = candidates[torch.randperm(candidates.numel(), generator=gen)[:count]]
    indices = chosen.sort().values
    true_labels = targets[indices].clone()
    new_inputs, new_targets = inputs.clone(), targets.clone()
    new_inputs[indices] = add_trigger(inputs[indices], size, value)
    new_targets[indices] = target
    return (new_inputs, new_targets), indices, true_labels


@torch.no_grad()
def attack_success_rate(
    model: nn.Module,
    clean_test: Data,
    target: int,
    *,
    size: int = 4,
    value: float = 1.0,
    batch_size: int = 2048,
) -> float:
    """Share of the test images not of class ``target`` that, with the trigger stamped, are classified ``target``.

    The model is evaluated in eval mode and its mode is restored afterwards.
    """
    inputs, targets = clean_test
    others = inputs[targets != target]
    if others.shape[0] == 0:
        raise ValueError(f"the test set has no image outside class {target}")
    preds = predict(model, add_trigger(others, size, value), batch_size=batch_size).argmax(dim=1)
    return float((preds == target).double().mean())
