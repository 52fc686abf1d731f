"""Flat parameter views: the contract's one vector of all trainable parameters.

The flat order is ``model.parameters()`` order, each tensor flattened row-major, exactly as
``torch.nn.utils.parameters_to_vector`` lays it out.  A *subset* ``P`` is a sorted, unique
1-D ``int64`` tensor of indices into that vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import checks

__all__ = [
    "ParamLayout",
    "apply_update",
    "check_group",
    "check_subset",
    "check_vector",
    "count_parameters",
    "embed",
    "flat_offsets",
    "flat_params",
    "keep_mask",
    "param_layout",
    "reset_parameters",
    "set_flat_params",
    "trainable_parameters",
    "weight_layers",
]


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that influence acts on: ``requires_grad`` ones, in ``parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the length of the contract's flat vector)."""
    return sum(p.numel() for p in trainable_parameters(model))


def reset_parameters(model: nn.Module, seed: int | None = None) -> nn.Module:
    """Re-initialise every submodule that has ``reset_parameters``, in ``modules()`` order, in place.

    With ``seed`` the draw is reproducible and the global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if module is not model and callable(reset):
                reset()
    return model


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of each trainable tensor inside the flat vector."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]  # start of each tensor; offsets[-1] + numel[-1] == num_params
    num_params: int

    def slice_of(self, name: str) -> slice:
        """The flat range ``[start, stop)`` that parameter ``name`` occupies."""
        try:
            i = self.names.index(name)
        except ValueError:
            raise KeyError(f"no trainable parameter named {name!r}; known: {list(self.names)}") from None
        return slice(self.offsets[i], self.offsets[i] + self.shapes[i].numel())

    def locate(self, index: int) -> tuple[str, tuple[int, ...]]:
        """Map a flat index to ``(parameter name, index inside that tensor)``."""
        if not 0 <= index < self.num_params:
            raise IndexError(f"flat index {index} outside [0, {self.num_params})")
        i = max(j for j, o in enumerate(self.offsets) if o <= index)
        local = index - self.offsets[i]
        return self.names[i], tuple(int(k) for k in torch.unravel_index(torch.tensor(local), self.shapes[i]))

    def counts_by_name(self, subset: torch.Tensor) -> dict[str, int]:
        """How many indices of ``subset`` fall in each parameter tensor."""
        bounds = torch.tensor([*self.offsets, self.num_params])
        counts = torch.bucketize(subset, bounds, right=True) - 1
        hist = torch.bincount(counts, minlength=len(self.names))
        return {n: int(c) for n, c in zip(self.names, hist)}


def param_layout(model: nn.Module) -> ParamLayout:
    """The layout of ``model``'s trainable parameters in the flat vector."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    offsets, start = [], 0
    for _, p in named:
        offsets.append(start)
        start += p.numel()
    return ParamLayout(
        names=tuple(n for n, _ in named),
        shapes=tuple(p.shape for _, p in named),
        offsets=tuple(offsets),
        num_params=start,
    )


def flat_offsets(model: nn.Module) -> dict[int, int]:
    """``id(parameter)`` -> its start in the flat vector, for every trainable tensor (by tensor identity,
    never by position: the one map from a layer's tensors to their flat indices)."""
    layout = param_layout(model)
    return {id(p): off for p, off in zip(trainable_parameters(model), layout.offsets, strict=True)}


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Linear | nn.Conv2d]]:
    """Every ``Linear`` / ``Conv2d`` whose weight is trainable, ``(name, module)`` in ``named_modules`` order:
    the layers K-FAC factorises and neuron-wise selection ranks (each checks what else it needs)."""
    trainable = {id(p) for p in trainable_parameters(model)}
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv2d) and id(m.weight) in trainable
    ]


def flat_params(model: nn.Module) -> torch.Tensor:
    """theta: a detached copy of all trainable parameters as one vector."""
    checks.check_model(model)
    return torch.cat([p.detach().reshape(-1) for p in trainable_parameters(model)])


def check_subset(subset: torch.Tensor | Sequence[int], num_params: int) -> torch.Tensor:
    """Validate a parameter subset P: sorted ascending, unique, in ``[0, num_params)``, non-empty.

    A boolean mask of length ``num_params`` (or a :class:`~gif_lite.selection.Selection`) is accepted.
    Raises :class:`~gif_lite.checks.GifLiteError` naming the problem; an unsorted subset is refused, never
    sorted silently (values paired with it would be mis-assigned).
    """
    return checks.check_subset(subset, num_params)


def check_vector(vec: torch.Tensor, num_params: int, name: str) -> None:
    """A flat, finite, floating vector of length ``num_params`` (see :func:`gif_lite.checks.check_vector`)."""
    checks.check_vector(vec, num_params, name)


def embed(delta: torch.Tensor, subset: torch.Tensor, num_params: int) -> torch.Tensor:
    """The update on ``P`` as a full vector: zeros of length ``num_params`` with ``out[P] = delta``.

    The one scatter of a subset update into the flat parameter vector (dtype and device of ``delta``).
    """
    if not isinstance(delta, torch.Tensor) or not isinstance(subset, torch.Tensor):
        raise checks.GifLiteTypeError("delta and subset must be tensors (use check_subset for other forms)")
    if subset.dim() != 1 or subset.dtype not in (torch.int64, torch.int32) or delta.shape != subset.shape:
        raise checks.GifLiteError(
            f"embed needs a 1-D integer subset and one delta entry per index, got subset "
            f"{subset.dtype} {tuple(subset.shape)} and delta {tuple(delta.shape)}"
        )
    if subset.numel() and (int(subset.min()) < 0 or int(subset.max()) >= num_params):
        raise checks.GifLiteError(f"subset must lie in [0, num_params={num_params})")
    out = torch.zeros(num_params, dtype=delta.dtype, device=delta.device)
    out[subset.to(delta.device)] = delta
    return out


def check_group(group: torch.Tensor | Sequence[int], n: int, *, allow_empty: bool = False) -> torch.Tensor:
    """Validate a group of example indices into ``n`` examples; return it as a 1-D int64 tensor.

    The one rule for groups (:func:`gif_lite.checks.check_group`): 1-D integer indices in ``[0, n)``
    without duplicates (kept in the caller's order), or a boolean mask of shape ``(n,)`` (its ``True``
    positions, ascending); a ``set`` is taken sorted.  Empty groups are refused unless ``allow_empty``.
    Raises :class:`~gif_lite.checks.GifLiteError` naming the problem.
    """
    return checks.check_group(group, n, allow_all=True, allow_empty=allow_empty)


def keep_mask(group: torch.Tensor, n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The boolean mask of the ``n`` examples *not* in ``group`` (a group checked by :func:`check_group`)."""
    group = checks.check_group(group, n, allow_all=True, allow_empty=True)
    keep = torch.ones(n, dtype=torch.bool, device=device)
    keep[group.to(keep.device)] = False
    return keep


def set_flat_params(model: nn.Module, theta: torch.Tensor) -> None:
    """Write a flat vector into the model's trainable parameters (in place, no autograd)."""
    checks.check_model(model)
    params = trainable_parameters(model)
    checks.check_vector(theta, sum(p.numel() for p in params), "theta", device=params[0].device)
    with checks.atomic(model), torch.no_grad():
        start = 0
        for p in params:
            p.copy_(theta[start : start + p.numel()].view_as(p))
            start += p.numel()


def apply_update(
    model: nn.Module, delta: torch.Tensor, subset: torch.Tensor | None = None, scale: float = 1.0
) -> None:
    """theta[P] += scale * delta (theta += scale * delta when ``subset`` is None).

    ``subset`` must be sorted ascending (``delta[i]`` belongs to ``subset[i]``); ``delta`` on the model's device.

    All inputs are validated before anything is written, so a failed call leaves the model unchanged.
    """
    theta = flat_params(model)
    scale = checks.check_finite_number(scale, "scale")
    if subset is None:
        checks.check_vector(delta, theta.numel(), "delta", device=theta.device)
        full = delta
    else:
        subset = checks.check_subset(subset, theta.numel(), device=theta.device)
        checks.check_vector(
            delta, subset.numel(), "delta (one entry per index of the subset)", device=theta.device
        )
        full = embed(delta.to(theta), subset, theta.numel())
    new = theta + scale * full.to(theta)
    if not bool(torch.isfinite(new).all()):
        raise checks.GifLiteError(
            f"theta + scale * delta overflows {theta.dtype} (scale={scale:g}, max |delta| = "
            f"{float(delta.abs().max()):.3g}); use a smaller scale"
        )
    set_flat_params(model, new)
