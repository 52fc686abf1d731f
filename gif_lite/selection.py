"""Parameter selection for GIF: which few parameters an influence update may move.

Every selector returns a subset ``P`` of the contract's flat parameter vector (see
:mod:`gif_lite.params`): a sorted, unique, 1-D ``int64`` tensor of indices.

Neuron-wise selectors (the paper's, Lyu et al. 2023, Sec. 4) act on every ``nn.Linear`` and
``nn.Conv2d`` layer ``l`` with trainable weights.  Output neuron (or channel) ``o`` gets a score

* outputs:   ``s_o = | mean over batch (and spatial / leading) positions of y_o |``
* gradients: ``s_o = | mean over the same positions of d loss(model(x), t) / d y_o |``

where ``y = layer(...)`` is the layer's output on ``inputs`` (Linear: every dim but the last is a
position; Conv2d: batch and spatial dims) and the loss ``loss_fn`` is mean-reduced.  A layer that
the forward calls several times averages over the positions of all its calls.  The layer's budget is
``b_l = int(ratio * size_l)`` with ``size_l`` its trainable weight + bias entries.  A neuron's
*row* is its ``r`` fan-in weights plus its bias (``r + 1`` entries, or ``r`` without a trainable
bias).  Rows are taken whole in score order, ``k = b_l // row`` of them, and the remainder
``b_l - k * row`` is spent on the next ranked neuron: its first (remainder) fan-in weights in flat
order and no bias.  The paper samples that partial row's weights at random; taking the first
ones keeps highest/lowest selection deterministic.  Every layer contributes exactly ``b_l``
indices; a layer whose budget is 0 contributes nothing.

Methods (``SELECTION_METHODS``):

* ``highest_outputs`` / ``highest_gradients``: rows in descending score.
* ``lowest_outputs`` / ``lowest_gradients``: rows in ascending score.
* ``exclusive_outputs`` / ``exclusive_gradients``: drop the ``k`` top-scored neurons, then draw
  ``k`` whole rows (and the partial row) uniformly at random among the rest.
* ``random``: ``b_l`` entries of each layer, uniformly without replacement (element-wise).
* ``largest_gradient_entries``: the plain baseline, the global top ``int(ratio * n)`` entries of
  ``|d loss / d theta|`` over all ``n`` trainable parameters (not per layer, not neuron-wise).

Ties rank the lower neuron (or flat) index first.  Random draws use ``generator``, or a fresh
``torch.Generator`` seeded 0 when it is ``None`` (an int seeds a fresh one), so every call is
reproducible.

Differences from the paper's code (github.com/hslyu/GIF, ``src/selection``): flat offsets come from
the identity of each layer's weight and bias among the trainable parameters, not from a walk over
leaf modules (which misplaces layers after a container's own parameter or a frozen layer); the
partial row is deterministic; ``random`` spends ``int(ratio * size_l)`` on the layer as a whole
where the paper draws ``int(ratio * weight)`` and ``int(ratio * bias)`` separately; gradient
scores add a zero probe to each layer's output instead of a full backward hook, so an in-place
op after the layer cannot alter them.  Exclusive selection needs about ``ratio <= 0.5`` (the paper
asserts it); above that a layer may run out of neurons outside its top and a ``ValueError`` says so.

Selection never changes the model: forward hooks live in a context manager that removes them on
every path, gradients come from ``torch.autograd.grad`` (``.grad`` is never written), buffers
(e.g. BatchNorm running statistics) and each module's training flag are restored afterwards.
The forward runs in the model's current mode; call ``model.eval()`` first for deterministic
scores when it has dropout (a warning says so).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from . import checks
from .params import count_parameters, flat_offsets, param_layout, trainable_parameters, weight_layers
from .types import LossFn

__all__ = [
    "SELECTION_METHODS",
    "LayerSelection",
    "LayerSpec",
    "Selection",
    "select",
    "select_parameters",
]

_OUTPUT_METHODS = ("highest_outputs", "lowest_outputs", "exclusive_outputs")
_GRADIENT_METHODS = ("highest_gradients", "lowest_gradients", "exclusive_gradients")
SELECTION_METHODS: tuple[str, ...] = (
    *_OUTPUT_METHODS,
    *_GRADIENT_METHODS,
    "random",
    "largest_gradient_entries",
)
_LAYER_TYPES = (nn.Linear, nn.Conv2d)

LayerSpec = str | type[nn.Module]


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerSelection:
    """What one layer (or, for ``largest_gradient_entries``, one parameter-owning module) gave.

    ``neurons_chosen`` are the neurons taken whole, in the order they were chosen (rank order for
    highest/lowest, draw order for exclusive); ``partial_neuron`` got ``partial_count`` fan-in
    weights and no bias.  ``weight_range`` / ``bias_range`` are the ``[start, stop)`` flat ranges.
    ``scores`` holds the per-neuron scores (``None`` for ``random`` and the global baseline).
    """

    name: str
    kind: str
    neurons_total: int
    neurons_chosen: tuple[int, ...]
    partial_neuron: int | None
    partial_count: int
    params_total: int
    params_chosen: int
    weight_range: tuple[int, int]
    bias_range: tuple[int, int] | None
    scores: torch.Tensor | None = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class Selection(checks.SubsetLike):
    """A parameter subset with its per-layer breakdown.  ``len(sel)`` is the subset size."""

    subset: torch.Tensor
    method: str
    ratio: float
    num_params: int
    layers: tuple[LayerSelection, ...]

    def __len__(self) -> int:
        return int(self.subset.numel())

    def table(self) -> list[dict[str, Any]]:
        """One dict per layer (``pandas.DataFrame(sel.table())`` shows it)."""
        return [
            {
                "layer": r.name,
                "type": r.kind,
                "neurons": r.neurons_total,
                "neurons_chosen": len(r.neurons_chosen),
                "partial_neuron": r.partial_neuron,
                "partial_count": r.partial_count,
                "params": r.params_total,
                "params_chosen": r.params_chosen,
                "fraction": r.params_chosen / r.params_total if r.params_total else 0.0,
                "weight_range": r.weight_range,
                "bias_range": r.bias_range,
            }
            for r in self.layers
        ]


# ----------------------------------------------------------------------------------------------
# Layers and their place in the flat vector
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Layer:
    """A Linear/Conv2d layer: neuron o's fan-in weights sit at ``weight_offset + o * fan_in + j``."""

    name: str
    module: nn.Module
    weight_offset: int
    bias_offset: int | None  # None when the layer has no trainable bias
    neurons: int
    fan_in: int

    @property
    def row(self) -> int:
        return self.fan_in + (self.bias_offset is not None)

    @property
    def size(self) -> int:
        return self.neurons * self.row

    @property
    def weight_range(self) -> tuple[int, int]:
        return self.weight_offset, self.weight_offset + self.neurons * self.fan_in

    @property
    def bias_range(self) -> tuple[int, int] | None:
        return None if self.bias_offset is None else (self.bias_offset, self.bias_offset + self.neurons)


def _candidate_layers(model: nn.Module, offsets: dict[int, int]) -> list[_Layer]:
    """Every Linear/Conv2d with a trainable weight, in ``named_modules`` order."""
    layers: list[_Layer] = []
    owner: dict[int, str] = {}
    for name, module in weight_layers(model):
        bias = module.bias
        has_bias = bias is not None and id(bias) in offsets
        for p in (module.weight, bias) if has_bias else (module.weight,):
            if id(p) in owner:
                raise checks.GifLiteError(
                    f"layers {owner[id(p)]!r} and {name!r} share a parameter; neuron-wise budgets would "
                    "count it twice: pass layers=[...] naming only one of them"
                )
            owner[id(p)] = name
        w = module.weight
        layers.append(
            _Layer(
                name=name,
                module=module,
                weight_offset=offsets[id(w)],
                bias_offset=offsets[id(bias)] if has_bias else None,
                neurons=w.shape[0],
                fan_in=w.numel() // w.shape[0],
            )
        )
    if not layers:
        raise checks.GifLiteError(
            "model has no Linear or Conv2d layer with trainable weights; nothing to select"
        )
    return layers


def _filter_layers(layers: list[_Layer], spec: Iterable[LayerSpec] | LayerSpec | None) -> list[_Layer]:
    """Keep the layers named in ``spec`` (a layer name, a container's name, or a module type)."""
    if spec is None:
        return layers
    items: list[LayerSpec] = [spec] if isinstance(spec, str | type) else list(spec)
    if not items:
        raise checks.GifLiteError("layers is empty; pass None to select from every Linear/Conv2d layer")
    keep: set[str] = set()
    for item in items:
        if isinstance(item, type):
            hit = {l.name for l in layers if isinstance(l.module, item)}
        elif isinstance(item, str):
            hit = {l.name for l in layers if l.name == item or l.name.startswith(item + ".")}
        else:
            raise checks.GifLiteError(f"layers entries must be layer names or module types, got {item!r}")
        if not hit:
            raise checks.GifLiteError(
                f"layers entry {item!r} matches no Linear/Conv2d layer with trainable weights; "
                f"available: {[l.name for l in layers]}"
            )
        keep |= hit
    return [l for l in layers if l.name in keep]


# ----------------------------------------------------------------------------------------------
# Scores through hooks
# ----------------------------------------------------------------------------------------------


def _channel_dims(module: nn.Module, out: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """(channel dim, dims averaged over): Linear's last dim; Conv2d's dim 1 (0 when unbatched)."""
    if isinstance(module, nn.Conv2d):
        ch = 1 if out.dim() == 4 else 0
    else:
        ch = out.dim() - 1
    return ch, tuple(d for d in range(out.dim()) if d != ch)


class _Accumulator:
    """Per layer: sum over positions of the output (or its probe) and the number of positions."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.probes: dict[str, torch.Tensor] = {}

    def output_hook(self, name: str) -> Callable[[nn.Module, Any, torch.Tensor], None]:
        """Add sum_positions y_o for this call (float64 across calls: a reused layer adds up)."""

        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            ch, dims = _channel_dims(module, out)
            s = (out.detach().sum(dim=dims) if dims else out.detach()).double()
            self.sums[name] = self.sums[name] + s if name in self.sums else s
            self.counts[name] = self.counts.get(name, 0) + out.numel() // out.shape[ch]

        return hook

    def probe_hook(self, name: str) -> Callable[[nn.Module, Any, torch.Tensor], torch.Tensor]:
        """Return ``y + p`` with a zero probe ``p`` broadcast over positions: dL/dp_o = sum dL/dy_o.

        The probe also keeps the captured gradient that of ``y`` itself when an in-place op
        (e.g. ``ReLU(inplace=True)``) follows the layer.
        """

        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
            ch, _ = _channel_dims(module, out)
            if name not in self.probes:
                shape = [1] * (out.dim() - ch)
                shape[0] = out.shape[ch]
                self.probes[name] = torch.zeros(shape, dtype=out.dtype, device=out.device, requires_grad=True)
            self.counts[name] = self.counts.get(name, 0) + out.numel() // out.shape[ch]
            return out + self.probes[name]

        return hook

    def means(self, layers: list[_Layer]) -> dict[str, torch.Tensor]:
        """Per-layer ``|sum / count|`` on the CPU; refuses layers the forward never called."""
        missing = [l.name for l in layers if l.name not in self.counts]
        if missing:
            raise checks.GifLiteError(
                f"layers {missing} were not called by model(inputs), so they have no score; "
                "pass layers=[...] naming only layers that the forward calls"
            )
        return {l.name: (self.sums[l.name] / self.counts[l.name]).abs().cpu() for l in layers}


@contextmanager
def _forward_hooks(layers: list[_Layer], make_hook: Callable[[str], Callable[..., Any]]) -> Iterator[None]:
    """Register one forward hook per layer; remove them all on exit, errors included."""
    handles: list[torch.utils.hooks.RemovableHandle] = []
    try:
        for l in layers:
            handles.append(l.module.register_forward_hook(make_hook(l.name)))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _preserved(model: nn.Module) -> Iterator[None]:
    """Restore every module's training flag and every buffer (BatchNorm statistics) on exit."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                if not torch.equal(b, saved):  # an unneeded copy_ would invalidate retained HVP graphs
                    b.copy_(saved)
        for m, mode in modes:
            m.training = mode


def _warn_if_stochastic(model: nn.Module) -> None:
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0 for m in model.modules()):
        warnings.warn(
            "model has dropout in training mode, so selection scores are random; call model.eval() "
            "first for deterministic scores",
            UserWarning,
            stacklevel=3,
        )


def _scalar_loss(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn
) -> torch.Tensor:
    return checks.check_loss_value(loss_fn(checks.run_forward(model, inputs, "inputs"), targets))


def _output_scores(model: nn.Module, layers: list[_Layer], inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """s_o = |mean y_o| from one no-grad forward."""
    acc = _Accumulator()
    with _preserved(model), _forward_hooks(layers, acc.output_hook), torch.no_grad():
        checks.run_forward(model, inputs, "inputs")
    return acc.means(layers)


def _gradient_scores(
    model: nn.Module, layers: list[_Layer], inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn
) -> dict[str, torch.Tensor]:
    """s_o = |mean dL/dy_o| from one forward and one backward to the probes (``.grad`` untouched)."""
    acc = _Accumulator()
    with _preserved(model), _forward_hooks(layers, acc.probe_hook), torch.enable_grad():
        loss = _scalar_loss(model, inputs, targets, loss_fn)
        names = list(acc.probes)
        grads = torch.autograd.grad(loss, [acc.probes[n] for n in names], allow_unused=True)
    for n, g in zip(names, grads, strict=True):
        p = acc.probes[n]
        acc.sums[n] = (torch.zeros_like(p) if g is None else g).reshape(-1).double()
    return acc.means(layers)


# ----------------------------------------------------------------------------------------------
# From scores to flat indices
# ----------------------------------------------------------------------------------------------


def _budget(ratio: float, size: int) -> int:
    """The budget rule: ``int(ratio * size)`` (floor; e.g. ratio 0.05 of 250 entries gives 12)."""
    return int(ratio * size)


def _rank(scores: torch.Tensor, descending: bool) -> torch.Tensor:
    """Neuron order by score; a stable sort puts the lower index first among ties."""
    return torch.sort(scores, descending=descending, stable=True).indices


def _row_indices(layer: _Layer, whole: torch.Tensor, partial: int | None, rem: int) -> torch.Tensor:
    """Flat indices of the whole rows (fan-in weights + bias) and of the partial row's first weights."""
    j = torch.arange(layer.fan_in)
    parts = [(layer.weight_offset + whole[:, None] * layer.fan_in + j[None, :]).reshape(-1)]
    if layer.bias_offset is not None:
        parts.append(layer.bias_offset + whole)
    if partial is not None:
        parts.append(layer.weight_offset + partial * layer.fan_in + j[:rem])
    return torch.cat(parts)


def _record(
    layer: _Layer,
    idx: torch.Tensor,
    whole: torch.Tensor,
    partial: int | None,
    rem: int,
    scores: torch.Tensor | None,
) -> LayerSelection:
    return LayerSelection(
        name=layer.name,
        kind=type(layer.module).__name__,
        neurons_total=layer.neurons,
        neurons_chosen=tuple(int(o) for o in whole),
        partial_neuron=partial,
        partial_count=rem if partial is not None else 0,
        params_total=layer.size,
        params_chosen=int(idx.numel()),
        weight_range=layer.weight_range,
        bias_range=layer.bias_range,
        scores=scores,
    )


def _neuronwise(
    layer: _Layer,
    scores: torch.Tensor,
    ratio: float,
    method: str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, LayerSelection]:
    """k = b // row whole rows and a partial row of b - k * row weights, chosen by ``method``."""
    budget = _budget(ratio, layer.size)
    k, rem = divmod(budget, layer.row)
    order = _rank(scores, descending=not method.startswith("lowest"))
    if method.startswith("exclusive"):
        rest = order[k:]
        need = k + (rem > 0)
        if need > rest.numel():
            raise checks.GifLiteError(
                f"{method!r} at ratio {ratio} needs {need} neurons of layer {layer.name!r} outside its "
                f"top {k}, but only {rest.numel()} remain; use ratio <= 0.5"
            )
        order = rest[torch.randperm(rest.numel(), generator=generator)[:need]]
    whole = order[:k]
    partial = int(order[k]) if rem else None
    idx = _row_indices(layer, whole, partial, rem)
    return idx, _record(layer, idx, whole, partial, rem, scores)


def _random(layer: _Layer, ratio: float, generator: torch.Generator) -> tuple[torch.Tensor, LayerSelection]:
    """b entries of the layer (weights then bias, in its own order), uniform without replacement."""
    budget = _budget(ratio, layer.size)
    pos = torch.randperm(layer.size, generator=generator)[:budget]
    n_w = layer.neurons * layer.fan_in
    idx = torch.where(pos < n_w, layer.weight_offset + pos, (layer.bias_offset or 0) + pos - n_w)
    return idx, _record(layer, idx, torch.empty(0, dtype=torch.long), None, 0, None)


def _largest_gradient_entries(
    model: nn.Module,
    layers: list[_Layer] | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: LossFn,
    ratio: float,
) -> tuple[torch.Tensor, tuple[LayerSelection, ...]]:
    """Global top int(ratio * n) of |dL/dtheta| (stable: lower index first among ties).

    Over all trainable parameters, or over the given layers' parameters when ``layers`` is set.
    """
    params = trainable_parameters(model)
    offsets = flat_offsets(model)
    with _preserved(model), torch.enable_grad():
        loss = _scalar_loss(model, inputs, targets, loss_fn)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads, strict=True)]
    )
    flat = flat.detach().abs().cpu()
    if torch.isnan(flat).any():
        raise checks.GifLiteError(
            "the loss gradient holds NaN entries, which cannot be ranked; check the model and inputs for NaN"
        )
    if layers is None:
        pool = torch.arange(flat.numel())
    else:
        pool = torch.cat(
            [torch.arange(*l.weight_range) for l in layers]
            + [torch.arange(*r) for l in layers if (r := l.bias_range) is not None]
        )
    budget = _budget(ratio, pool.numel())
    idx = pool[_rank(flat[pool], descending=True)[:budget]]
    return idx, _module_records(model, offsets, idx)


def _module_records(
    model: nn.Module, offsets: dict[int, int], idx: torch.Tensor
) -> tuple[LayerSelection, ...]:
    """Per module owning trainable parameters directly: how many of ``idx`` fall in its tensors."""
    chosen = torch.zeros(count_parameters(model), dtype=torch.bool)
    chosen[idx] = True
    records = []
    for name, module in model.named_modules():
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if id(p) in offsets]
        if not own:
            continue
        ranges = {n: (offsets[id(p)], offsets[id(p)] + p.numel()) for n, p in own}
        weight = ranges.get("weight", ranges[own[0][0]])
        neurons = int(module.weight.shape[0]) if isinstance(module, _LAYER_TYPES) else 0
        records.append(
            LayerSelection(
                name=name,
                kind=type(module).__name__,
                neurons_total=neurons,
                neurons_chosen=(),
                partial_neuron=None,
                partial_count=0,
                params_total=sum(p.numel() for _, p in own),
                params_chosen=sum(int(chosen[a:b].sum()) for a, b in ranges.values()),
                weight_range=weight,
                bias_range=ranges.get("bias"),
            )
        )
    return tuple(records)


# ----------------------------------------------------------------------------------------------
# Validation and the entry points
# ----------------------------------------------------------------------------------------------


def _check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float):
        raise checks.GifLiteTypeError(f"ratio must be a number in (0, 1], got {ratio!r}")
    r = float(ratio)
    if not (math.isfinite(r) and 0.0 < r <= 1.0):
        raise checks.GifLiteError(f"ratio must be in (0, 1], got {ratio}")
    return r


def _check_method(method: str) -> None:
    if method not in SELECTION_METHODS:
        raise checks.GifLiteError(f"unknown method {method!r}; valid: {', '.join(SELECTION_METHODS)}")


def _check_inputs(inputs: Any) -> torch.Tensor:
    if isinstance(inputs, np.ndarray) and inputs.dtype != object:  # documented: numpy is accepted
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    if not isinstance(inputs, torch.Tensor):
        raise checks.GifLiteTypeError(f"inputs must be a tensor of examples, got {type(inputs).__name__}")
    if inputs.numel() == 0 or (inputs.dim() > 0 and inputs.shape[0] == 0):
        raise checks.GifLiteError(
            f"inputs is empty (shape {tuple(inputs.shape)}); pass the examples to score"
        )
    if inputs.is_floating_point() and not bool(torch.isfinite(inputs).all()):
        raise checks.GifLiteError("inputs hold NaN or infinite values; clean them before selecting")
    return inputs


def _check_targets(
    method: str, inputs: torch.Tensor, targets: Any, loss_fn: Any
) -> tuple[torch.Tensor, LossFn]:
    if targets is None or loss_fn is None:
        raise checks.GifLiteError(f"{method!r} needs targets and loss_fn (e.g. torch.nn.CrossEntropyLoss())")
    if isinstance(targets, np.ndarray) and targets.dtype != object:
        targets = torch.from_numpy(np.ascontiguousarray(targets))
    if not isinstance(targets, torch.Tensor):
        raise checks.GifLiteTypeError(f"targets must be a tensor, got {type(targets).__name__}")
    checks.check_loss_fn(loss_fn)
    if inputs.dim() > 0 and targets.dim() > 0 and targets.shape[0] != inputs.shape[0]:
        raise checks.GifLiteError(
            f"targets has {targets.shape[0]} entries but inputs has {inputs.shape[0]} examples"
        )
    return targets, loss_fn


def select(
    model: nn.Module,
    method: str,
    ratio: float,
    inputs: torch.Tensor | None,
    targets: torch.Tensor | None = None,
    loss_fn: LossFn | None = None,
    generator: torch.Generator | int | None = None,
    layers: Iterable[LayerSpec] | LayerSpec | None = None,
) -> Selection:
    """Choose about ``ratio`` of the parameters of ``model`` by ``method`` (see the module docstring).

    ``inputs`` are the examples being examined (e.g. those to remove); ``random`` ignores them.
    Gradient methods need ``targets`` and a mean-reducing ``loss_fn(outputs, targets)``.
    ``layers`` restricts selection to some Linear/Conv2d layers: names as in ``named_modules``
    (a container's name takes every layer under it) and/or module types.
    Raises ``ValueError`` on a bad ratio, method, inputs, missing targets/loss_fn, a model without
    Linear/Conv2d layers, or a ratio that selects nothing.
    """
    checks.check_model(model, trainable=False)
    _check_method(method)
    ratio = _check_ratio(ratio)
    generator = checks.check_generator(generator)
    offsets = flat_offsets(model)
    num_params = param_layout(model).num_params
    candidates = _filter_layers(_candidate_layers(model, offsets), layers)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    if method == "random":
        picked = [_random(l, ratio, gen) for l in candidates]
        return _finish(
            torch.cat([i for i, _ in picked]), method, ratio, num_params, tuple(r for _, r in picked)
        )

    x = _check_inputs(inputs)
    if method in _OUTPUT_METHODS:
        _warn_if_stochastic(model)
        scores = _output_scores(model, candidates, x)
    else:
        t, fn = _check_targets(method, x, targets, loss_fn)
        _warn_if_stochastic(model)
        if method == "largest_gradient_entries":
            pool = None if layers is None else candidates
            idx, records = _largest_gradient_entries(model, pool, x, t, fn, ratio)
            return _finish(idx, method, ratio, num_params, records)
        scores = _gradient_scores(model, candidates, x, t, fn)
    for name, s in scores.items():
        if torch.isnan(s).any():
            raise checks.GifLiteError(f"layer {name!r} has NaN scores; check the model and inputs for NaN")
    picked = [_neuronwise(l, scores[l.name], ratio, method, gen) for l in candidates]
    return _finish(torch.cat([i for i, _ in picked]), method, ratio, num_params, tuple(r for _, r in picked))


def _finish(
    idx: torch.Tensor, method: str, ratio: float, num_params: int, records: tuple[LayerSelection, ...]
) -> Selection:
    if idx.numel() == 0:
        raise checks.GifLiteError(
            f"ratio {ratio} selects no parameter (int(ratio * size) is 0 for every layer); raise ratio"
        )
    subset = torch.unique(idx.to(torch.long))  # sorted
    assert subset.numel() == idx.numel(), "selection produced duplicated indices"
    return Selection(subset=subset, method=method, ratio=ratio, num_params=num_params, layers=records)


def select_parameters(*args: Any, **kwargs: Any) -> torch.Tensor:
    """Deprecated alias of ``select(...).subset``, same arguments (kept for one release; call :func:`select`)."""
    warnings.warn(
        "gif_lite.select_parameters is deprecated and will be removed in the next release; "
        "call gif_lite.select(...).subset instead (same arguments)",
        DeprecationWarning,
        stacklevel=2,
    )
    return select(*args, **kwargs).subset
