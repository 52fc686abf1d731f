"""The one set of boundary checks: every public entry point validates its inputs here.

Each check either returns the input in the one form the library works with, or raises
:class:`GifLiteError` (a ``ValueError``; :class:`GifLiteTypeError` is also a ``TypeError``) whose message
names the argument, says what was wrong and how to fix it.  Risky but legitimate inputs warn with
:class:`GifLiteWarning`.  What is accepted, and in which form:

* **data**: an ``(inputs, targets)`` pair of tensors or numpy arrays (one batch); a ``TensorDataset`` of
  two tensors (its ``.tensors``); a list of such pairs; or a re-iterable of batches such as a
  ``DataLoader``.  A shuffled ``DataLoader`` is fine (the objective sums over every example, whatever
  the order); with ``drop_last=True`` or a sampler with replacement each pass sees different examples,
  so the objective would change between Hessian-vector products: refused.  A one-shot iterator is read
  once into a list, at most :data:`MAX_ONE_SHOT_BATCHES` batches (an endless one is refused).  Dict
  batches and other ``Dataset`` objects are refused with the line that converts them.
* **losses**: ``loss_fn(outputs, targets)`` must return a floating scalar tensor attached to the graph,
  the *mean* over the batch: a loss that doubles on a batch repeated twice (``reduction="sum"``) is
  refused; one that is not a batch mean at all warns.
* **modes**: dropout, or batch norm that uses batch statistics, in training mode at *any* depth (also
  under a root in ``eval()``) makes the loss random or batch-dependent: refused, naming the module.
* **subsets** ``P``: 1-D integer indices, sorted ascending, unique, in ``[0, num_params)``; or a boolean
  mask of length ``num_params``; or a :class:`~gif_lite.selection.Selection`.  Unsorted subsets are
  refused (``delta[i]`` belongs to ``P[i]``, so silently sorting would mis-assign updates).
* **groups** of examples: 1-D integer indices (tensor, numpy array, list, range), unique, in
  ``[0, n)``, in the caller's order; or a boolean mask of length ``n``; a ``set`` is taken sorted, and
  refused where per-example labels must be aligned with it.
* **vectors**: 1-D floating tensors of the right length, finite, on the model's device.
* **labels**: one integer (broadcast over the group) or shape ``(m,)``; integer-valued; in
  ``[0, num_classes)`` when the number of classes is known.
* **solver options**: ``tol`` > 0, ``max_iter`` a positive int or ``None`` (the solver's default;
  ``0`` is refused, never read as "default"), and only the keyword options the named solver takes.
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import torch
from torch import nn

__all__ = [
    "MAX_ONE_SHOT_BATCHES",
    "MAX_UNSIZED_BATCHES",
    "GifLiteError",
    "GifLiteTypeError",
    "GifLiteWarning",
    "ModelCallError",
    "ModelState",
    "SubsetLike",
    "atomic",
    "bounded",
    "check_batches",
    "check_class_targets",
    "check_data_pair",
    "check_dense_block",
    "check_device",
    "check_example_pair",
    "check_finite_number",
    "check_generator",
    "check_group",
    "check_indices",
    "check_labels",
    "check_loss_fn",
    "check_loss_on",
    "check_loss_value",
    "check_max_iter",
    "check_model",
    "check_modes",
    "check_seed",
    "check_solver_options",
    "check_subset",
    "check_symmetric",
    "check_vector",
    "in_example_order",
    "model_device",
    "run_forward",
]

#: A one-shot iterator given as data is read into memory; more batches than this means it never ends.
MAX_ONE_SHOT_BATCHES = 10_000
#: A re-iterable without a length (no ``len()``) that yields more batches than this in one pass is refused.
MAX_UNSIZED_BATCHES = 1_000_000


class GifLiteError(ValueError):
    """A bad input to gif_lite: the message names the argument, what was wrong and the fix."""


class GifLiteTypeError(GifLiteError, TypeError):
    """A bad input of the wrong type (both a :class:`GifLiteError` and a ``TypeError``)."""


class ModelCallError(GifLiteError, RuntimeError):
    """``model(inputs)`` failed (a shape or dtype mismatch): the message adds the inputs' shape and dtype."""


class GifLiteWarning(UserWarning):
    """A legitimate but risky input (the message says what to check)."""


def _warn(message: str, stacklevel: int = 3) -> None:
    warnings.warn(message, GifLiteWarning, stacklevel=stacklevel)


def _kind(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} numpy array of shape {value.shape}"
    return (
        f"{type(value).__name__} {value!r}"
        if isinstance(value, numbers.Number | str)
        else type(value).__name__
    )


# ---------------------------------------------------------------------------------------------- numbers
def check_finite_number(
    value: object, name: str, *, low: float | None = None, low_open: bool = False, high: float | None = None
) -> float:
    """``value`` as a float: a real number (not bool), finite, ``>= low`` (``> low`` if ``low_open``), ``<= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | torch.Tensor):
        raise GifLiteTypeError(f"{name} must be a real number, got {_kind(value)}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise GifLiteTypeError(f"{name} must be a number, got {_kind(value)}")
        value = value.item()
    x = float(cast(float, value))
    if not math.isfinite(x):
        raise GifLiteError(f"{name} must be a finite number, got {x}; pass a finite value")
    if low is not None and (x <= low if low_open else x < low):
        raise GifLiteError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and x > high:
        raise GifLiteError(f"{name} must be <= {high}, got {x}")
    return x


def check_max_iter(max_iter: object, name: str = "max_iter") -> int | None:
    """``None`` (the solver's default) or a positive int; ``0`` is refused, never read as the default."""
    if max_iter is None:
        return None
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral):
        raise GifLiteTypeError(
            f"{name} must be a positive int or None (the solver's default), got {_kind(max_iter)}"
        )
    if int(max_iter) < 1:
        raise GifLiteError(
            f"{name}={max_iter} would run no iteration; pass a positive int, or None for the solver's default"
        )
    return int(max_iter)


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """``None``, a ``torch.Generator``, or an int seed (documented: becomes a CPU generator seeded with it)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(int(generator))
    raise GifLiteTypeError(
        f"{name} must be a torch.Generator (or an int seed), got {_kind(generator)}; "
        "use torch.Generator().manual_seed(0)"
    )


def check_seed(seed: object, name: str = "seed") -> int:
    """An int seed (not a bool, float or string): what ``torch.Generator().manual_seed`` takes."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise GifLiteTypeError(f"{name} must be an int, got {_kind(seed)}; pass e.g. {name}=0")
    return int(seed)


# ---------------------------------------------------------------------------------------------- models
def check_model(model: object, name: str = "model", *, trainable: bool = True) -> nn.Module:
    """An ``nn.Module`` (with at least one trainable parameter when ``trainable``)."""
    if not isinstance(model, nn.Module):
        raise GifLiteTypeError(f"{name} must be a torch.nn.Module, got {_kind(model)}")
    if trainable and not any(p.requires_grad for p in model.parameters()):
        raise GifLiteError(
            f"{name} has no trainable parameters (none has requires_grad=True), so there is nothing to "
            "differentiate; unfreeze some with p.requires_grad_(True)"
        )
    return model


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model with neither."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


def check_device(
    tensor: torch.Tensor, device: torch.device | str, name: str, where: str = "the model"
) -> None:
    """Refuse a tensor on another device than ``device`` (no hidden copies between devices)."""
    device = torch.device(device)
    if tensor.device.type != device.type or (
        device.index is not None and tensor.device.index is not None and tensor.device.index != device.index
    ):
        raise GifLiteError(
            f"{name} is on {tensor.device} but {where} is on {device}; move it with {name}.to({str(device)!r})"
        )


_STOCHASTIC = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def _batch_dependent(module: nn.Module) -> bool:
    """Whether ``module`` in its current mode makes the loss random or depend on the batch's make-up."""
    if isinstance(module, _STOCHASTIC):
        return module.training and float(getattr(module, "p", 0.0)) > 0.0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        # batch statistics are used in training mode, and always when running statistics are not tracked
        return module.training or module.running_mean is None
    return False


def check_modes(model: nn.Module, name: str = "model", what: str = "an Objective") -> None:
    """Refuse dropout / batch norm in a batch-dependent mode at any depth, naming each such module."""
    bad = [(n or "<root>", type(m).__name__) for n, m in model.named_modules() if _batch_dependent(m)]
    if bad:
        shown = ", ".join(f"{n!r} ({t})" for n, t in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise GifLiteError(
            f"{name} has modules whose output is random or depends on the batch in their current mode: "
            f"{shown}; the loss of {what} would change between calls (and batch norm would rewrite its "
            f"running statistics). Call {name}.eval() first (it sets every submodule), or freeze those "
            "modules' statistics (batch norm without track_running_stats always uses batch statistics)"
        )


# ---------------------------------------------------------------------------------------------- snapshots
class ModelState:
    """Everything a failed operation must leave as it was: parameters, buffers, modes, ``requires_grad``
    flags, ``.grad`` and hooks of every module.  ``restore()`` puts it all back; ``==`` compares two."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.params = [(p, p.detach().clone(), p.requires_grad, None if p.grad is None else p.grad.clone())
                       for p in model.parameters()]  # fmt: skip
        self.buffers = [(m, k, b, b.detach().clone()) for m in model.modules() for k, b in m._buffers.items()
                        if b is not None]  # fmt: skip
        self.modes = [(m, m.training) for m in model.modules()]
        self.hooks = [(m, dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks))
                      for m in model.modules()]  # fmt: skip

    def restore(self) -> None:
        with torch.no_grad():
            for p, value, flag, grad in self.params:
                if p.shape == value.shape:
                    p.copy_(value)
                else:  # a load that replaced the tensor's shape
                    p.data = value
                p.requires_grad_(flag)
                p.grad = grad
            for m, k, b, value in self.buffers:
                if b.shape == value.shape:
                    b.copy_(value)
                m._buffers[k] = b
        for m, mode in self.modes:
            m.training = mode
        for m, fwd, pre, bwd in self.hooks:
            for store, saved in (
                (m._forward_hooks, fwd),
                (m._forward_pre_hooks, pre),
                (m._backward_hooks, bwd),
            ):
                store.clear()
                store.update(saved)

    def same_as(self, other: ModelState) -> bool:
        """Bit-for-bit equality of everything recorded (tests use it)."""

        def grads_equal(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
            return (a is None and b is None) or (a is not None and b is not None and _same(a, b))

        return (
            len(self.params) == len(other.params)
            and all(
                a[0] is b[0] and _same(a[1], b[1]) and a[2] == b[2] and grads_equal(a[3], b[3])
                for a, b in zip(self.params, other.params)
            )
            and len(self.buffers) == len(other.buffers)
            and all(a[2] is b[2] and _same(a[3], b[3]) for a, b in zip(self.buffers, other.buffers))
            and [m for _, m in self.modes] == [m for _, m in other.modes]
            and [tuple(map(len, h[1:])) for h in self.hooks] == [tuple(map(len, h[1:])) for h in other.hooks]
        )


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality that counts NaN as equal to NaN in the same place."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))
    return torch.equal(a, b)


@contextmanager
def atomic(model: nn.Module) -> Iterator[ModelState]:
    """Run a block that writes ``model``: if it raises, everything :class:`ModelState` records is restored."""
    state = ModelState(model)
    try:
        yield state
    except BaseException:
        state.restore()
        raise


# ---------------------------------------------------------------------------------------------- data
def _as_tensor(value: object, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise GifLiteTypeError(f"{name} is a numpy array of Python objects; convert it to numbers first")
        return torch.from_numpy(np.ascontiguousarray(value))
    raise GifLiteTypeError(
        f"{name} must be a tensor (or a numpy array), got {_kind(value)}; convert it with torch.as_tensor({name})"
    )


def check_data_pair(
    data: object, name: str = "data", *, finite: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``(inputs, targets)`` batch: tensors (numpy arrays are converted), same number of examples, non-empty."""
    if isinstance(data, Mapping):
        raise GifLiteTypeError(
            f"{name} is a dict (keys {list(data)[:4]}); gif_lite takes (inputs, targets) pairs: "
            f"pass ({name}['<inputs key>'], {name}['<targets key>'])"
        )
    if not isinstance(data, tuple | list) or len(data) != 2:
        length = f" of length {len(data)}" if isinstance(data, tuple | list) else ""
        raise GifLiteTypeError(
            f"{name} must be an (inputs, targets) pair of tensors, got {_kind(data)}{length}"
        )
    x, y = _as_tensor(data[0], f"{name}'s inputs"), _as_tensor(data[1], f"{name}'s targets")
    if x.dim() == 0 or y.dim() == 0:
        raise GifLiteError(
            f"{name}'s inputs and targets need a leading example dimension, got shapes {tuple(x.shape)} "
            f"and {tuple(y.shape)}; add one with .unsqueeze(0)"
        )
    if x.shape[0] != y.shape[0]:
        raise GifLiteError(
            f"{name}'s inputs and targets disagree on batch size: {x.shape[0]} inputs but {y.shape[0]} "
            "targets; pass one target per example"
        )
    if x.shape[0] == 0:
        raise GifLiteError(f"{name} is empty (it holds no examples); pass at least one")
    if finite:
        for part, t in (("inputs", x), ("targets", y)):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise GifLiteError(f"{name}'s {part} hold NaN or infinite values; clean the data first")
    return x, y


def _check_loader(data: torch.utils.data.DataLoader, name: str) -> None:
    sampler = data.sampler
    random = isinstance(sampler, torch.utils.data.RandomSampler)
    if random and cast(torch.utils.data.RandomSampler, sampler).replacement:
        raise GifLiteError(
            f"{name} is a DataLoader that samples with replacement, so every pass sees different examples "
            "and the objective changes between gradient and Hessian-vector products; use shuffle=False "
            "(or shuffle=True without replacement)"
        )
    if random and data.drop_last:
        raise GifLiteError(
            f"{name} is a shuffled DataLoader with drop_last=True, so every pass drops different examples "
            "and the objective changes between Hessian-vector products; pass drop_last=False (a shuffled "
            "loader without drop_last is fine: the objective sums over every example)"
        )
    if (
        not random
        and not isinstance(sampler, torch.utils.data.SequentialSampler)
        and data.batch_sampler is not None
    ):
        _warn(
            f"{name} uses a custom sampler ({type(sampler).__name__}); the objective is only well defined "
            "if every pass visits the same examples"
        )


def in_example_order(batches: Iterable[Any]) -> Iterable[Any]:
    """``batches`` read in example order: a shuffled ``DataLoader`` is read again over its dataset without
    shuffling (its batch size and collate function kept), so per-example results line up with the data."""
    if isinstance(batches, torch.utils.data.DataLoader) and isinstance(
        batches.sampler, torch.utils.data.RandomSampler
    ):
        return torch.utils.data.DataLoader(
            batches.dataset, batch_size=batches.batch_size or 1, shuffle=False, collate_fn=batches.collate_fn
        )
    return batches


def check_batches(
    data: object, name: str = "data"
) -> list[tuple[torch.Tensor, torch.Tensor]] | Iterable[Any]:
    """``data`` as a list of batches (one pair, a TensorDataset, a list, a one-shot iterator) or the
    re-iterable itself (a DataLoader or similar, whose batches are checked as they are read)."""
    if isinstance(data, torch.utils.data.TensorDataset):
        if len(data.tensors) != 2:
            raise GifLiteError(
                f"{name} is a TensorDataset of {len(data.tensors)} tensors; gif_lite needs (inputs, targets)"
            )
        return [check_data_pair(tuple(data.tensors), name)]
    if isinstance(data, tuple | list) and len(data) == 2 and isinstance(data[0], torch.Tensor | np.ndarray):
        return [check_data_pair(data, name)]  # one batch (a list as targets is refused there, clearly)
    if isinstance(data, tuple):
        data = list(data)
    if isinstance(data, Mapping):
        check_data_pair(data, name)  # raises with the fix
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        raise GifLiteTypeError(
            f"{name} is a {type(data).__name__}, which yields single examples; wrap it in "
            "torch.utils.data.DataLoader(dataset, batch_size=..., shuffle=False)"
        )
    if isinstance(data, torch.Tensor | np.ndarray | str | bytes) or not isinstance(data, Iterable):
        raise GifLiteTypeError(
            f"{name} must be an (inputs, targets) pair or an iterable of such batches, got {_kind(data)}"
        )
    if isinstance(data, torch.utils.data.DataLoader):
        _check_loader(data, name)
    if iter(data) is data:  # one-shot: read it once, boundedly
        batches = list(itertools.islice(cast(Iterator[Any], data), MAX_ONE_SHOT_BATCHES + 1))
        if len(batches) > MAX_ONE_SHOT_BATCHES:
            raise GifLiteError(
                f"{name} is an iterator that yielded more than {MAX_ONE_SHOT_BATCHES:,} batches without "
                "ending (itertools.cycle or an endless generator?); pass a finite list of batches or a DataLoader"
            )
        data = batches
    if isinstance(data, list):
        if not data:
            raise GifLiteError(f"{name} holds no batches; pass at least one (inputs, targets) pair")
        return [check_data_pair(b, f"{name}[{i}]") for i, b in enumerate(data)]
    return cast(Iterable[Any], data)


def check_example_pair(data: object, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """Every form :func:`check_batches` takes, as one ``(inputs, targets)`` pair in example order (a
    shuffled ``DataLoader`` is read without shuffling): for functions that index examples (groups,
    per-example results), so each form gives the canonical pair's answer."""
    if isinstance(data, tuple | list) and len(data) == 2 and isinstance(data[0], torch.Tensor | np.ndarray):
        return check_data_pair(data, name)
    batches = check_batches(data, name)
    pairs = [
        check_data_pair(b, f"{name}[{i}]") for i, b in enumerate(bounded(in_example_order(batches), name))
    ]
    if not pairs:
        raise GifLiteError(f"{name} holds no batches; pass at least one (inputs, targets) pair")
    if len(pairs) == 1:
        return pairs[0]
    return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])


def bounded(batches: Iterable[Any], name: str = "data") -> Iterator[Any]:
    """Iterate ``batches``; one without ``len()`` that runs past :data:`MAX_UNSIZED_BATCHES` is refused."""
    try:
        len(batches)  # type: ignore[arg-type]
        sized = True
    except TypeError:
        sized = False
    if sized:
        yield from batches
        return
    for i, batch in enumerate(batches):
        if i >= MAX_UNSIZED_BATCHES:
            raise GifLiteError(
                f"{name} yielded more than {MAX_UNSIZED_BATCHES:,} batches in one pass without ending; pass a "
                "finite collection of batches (a list or a DataLoader over a sized dataset)"
            )
        yield batch


# ---------------------------------------------------------------------------------------------- losses
def check_loss_fn(
    loss_fn: object, name: str = "loss_fn"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A callable; an ``nn`` loss module must be mean-reduced."""
    if not callable(loss_fn):
        raise GifLiteTypeError(
            f"{name} must be callable as {name}(outputs, targets) -> scalar batch mean, got {_kind(loss_fn)}"
        )
    reduction = getattr(loss_fn, "reduction", None)
    if isinstance(loss_fn, nn.Module) and reduction is not None and reduction not in ("mean", "batchmean"):
        raise GifLiteError(
            f"{name} has reduction={reduction!r}, but {name} must return a scalar batch mean: pass "
            "reduction='mean' (with 'sum' the data term would be n times too large against the weight decay)"
        )
    return cast(Callable[[torch.Tensor, torch.Tensor], torch.Tensor], loss_fn)


def run_forward(model: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """``model(x)``, with a failure inside the model re-raised naming the inputs' shape and dtype."""
    try:
        return model(x)
    except RuntimeError as e:
        params = [p for p in model.parameters()]
        hint = ""
        if params and params[0].is_floating_point() and not x.is_floating_point():
            hint = f"; the inputs are {x.dtype} but the model is {params[0].dtype}: convert them with .to({params[0].dtype})"
        raise ModelCallError(
            f"model({name}'s inputs) failed on inputs of shape {tuple(x.shape)} and dtype {x.dtype}{hint} ({e})"
        ) from e


def check_class_targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str = "data") -> None:
    """Integer targets of a model with 2-D outputs ``(n, C)`` must be class labels in ``[0, C)``: checked
    with one forward of one example (nothing changed), so training refuses them before its first step."""
    if y.is_floating_point() or y.dim() != 1:
        return
    with atomic(model) as state, torch.no_grad():
        out = run_forward(model, x[:1].to(model_device(model)), name)
        state.restore()
    if out.dim() == 2 and y.numel() and (int(y.min()) < 0 or int(y.max()) >= out.shape[1]):
        raise GifLiteError(
            f"{name}'s targets must be class labels in [0, {out.shape[1]}) (the model's outputs), got range "
            f"[{int(y.min())}, {int(y.max())}]"
        )


def check_loss_value(loss: object, name: str = "loss_fn", *, attached: bool = True) -> torch.Tensor:
    """A floating scalar tensor (shape ``()`` or one element), attached to the graph when ``attached``."""
    if not isinstance(loss, torch.Tensor):
        raise GifLiteTypeError(
            f"{name} returned {_kind(loss)}, not a tensor; return the torch scalar itself (no .item() or float())"
        )
    if loss.numel() != 1:
        raise GifLiteError(
            f"{name} must return a scalar batch mean, got shape {tuple(loss.shape)}; use reduction='mean' or .mean()"
        )
    if not loss.is_floating_point():
        raise GifLiteError(f"{name} returned a {loss.dtype} tensor; it must be a floating-point scalar")
    if attached and not loss.requires_grad:
        raise GifLiteError(
            f"{name} returned a tensor not attached to the autograd graph (requires_grad=False); do not "
            ".detach() it, compute it under torch.no_grad(), or rebuild it from .item()"
        )
    return loss.reshape(())


def check_loss_on(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    params: Sequence[torch.Tensor],
    name: str = "data",
    *,
    probe: int = 8,
) -> None:
    """Run ``loss_fn(model(x[:k]), y[:k])`` on a few examples: a scalar attached to the graph, every
    trainable parameter used, and a batch *mean* (the loss of the batch repeated twice must be equal;
    ``reduction="sum"`` doubles it).  The model is left exactly as it was."""
    k = min(probe, int(x.shape[0]))
    xs, ys = x[:k], y[:k]
    with atomic(model) as state, torch.enable_grad():
        loss = check_loss_value(loss_fn(run_forward(model, xs, name), ys))
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
        unused = [i for i, g in enumerate(grads) if g is None]
        if unused:
            names = {id(p): n for n, p in model.named_parameters()}
            shown = [names.get(id(params[i]), f"#{i}") for i in unused]
            raise GifLiteError(
                f"trainable parameters {shown} are not used by model(inputs), so the Hessian is singular "
                "on them; freeze them with p.requires_grad_(False) (or remove them) before building the objective"
            )
        with torch.no_grad():
            twice = loss_fn(model(torch.cat([xs, xs])), torch.cat([ys, ys]))
        state.restore()  # a forward must not change anything (e.g. batch-norm statistics)
    ratio = float(twice) / float(loss.detach()) if float(loss.detach()) != 0.0 else 1.0
    slack = max(1e-3, 20 * torch.finfo(loss.dtype).eps)  # a half-precision mean rounds by more than 1e-3
    if math.isfinite(ratio) and abs(ratio - 2.0) < slack:
        raise GifLiteError(
            "loss_fn sums over the batch (its value doubled on a batch repeated twice); the objective is the "
            "mean loss, so use reduction='mean' (or divide by the batch size)"
        )
    if math.isfinite(ratio) and abs(ratio - 1.0) > slack:
        _warn(
            f"loss_fn is not a batch mean: on a batch repeated twice it changed by a factor {ratio:.4g} (a "
            "mean is unchanged); the objective assumes loss_fn returns the mean loss over the batch",
            stacklevel=4,
        )


# ---------------------------------------------------------------------------------------------- indices
class SubsetLike:
    """A base for objects that stand for a parameter subset (``gif_lite.Selection``): its ``subset``."""

    subset: torch.Tensor


def _index_tensor(value: object, name: str, *, what: str) -> torch.Tensor:
    if isinstance(value, SubsetLike):  # a Selection stands for its subset
        value = value.subset
    if isinstance(value, set | frozenset):
        value = sorted(value)
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray):
        t = _as_tensor(value, name)
    elif isinstance(value, range | Sequence) and not isinstance(value, str | bytes):
        items = list(value)
        if not all(isinstance(v, numbers.Integral | np.integer | bool) for v in items):
            bad = next(v for v in items if not isinstance(v, numbers.Integral | np.integer | bool))
            raise GifLiteTypeError(f"{name} must hold integer {what}, got {_kind(bad)} among them")
        t = torch.tensor(
            items, dtype=torch.bool if items and all(isinstance(v, bool) for v in items) else torch.long
        )
    else:
        raise GifLiteTypeError(f"{name} must be a 1-D tensor of integer {what}, got {_kind(value)}")
    return t


def check_indices(
    value: object,
    size: int,
    name: str,
    *,
    what: str = "indices",
    sorted_: bool = False,
    unique: bool = True,
    allow_empty: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A 1-D int64 tensor of indices into ``range(size)``; a boolean mask of length ``size`` becomes its
    nonzero indices (the one rule for masks).  ``sorted_`` refuses unsorted input instead of sorting it."""
    t = _index_tensor(value, name, what=what)
    if t.dtype == torch.bool:
        if t.shape != (size,):
            unit = what.split()[0]  # "example indices" -> one entry per example
            raise GifLiteError(
                f"a boolean {name} mask must have shape ({size},) (one entry per {unit}), got shape "
                f"{tuple(t.shape)}; or pass integer {what}"
            )
        t = t.nonzero().flatten()
    if t.numel() == 0 and not allow_empty:
        raise GifLiteError(f"{name} is empty; pass at least one of the {what}")
    if t.numel() == 0 and t.dim() == 1:  # an allowed empty selection: its dtype does not matter
        return torch.empty(0, dtype=torch.long, device=device if device is not None else t.device)
    if t.is_floating_point() or t.is_complex():
        raise GifLiteError(
            f"{name} must hold integer {what}, got dtype {t.dtype}; convert with .long() if they are whole"
        )
    if t.dim() != 1:
        raise GifLiteError(f"{name} must be 1-D, got shape {tuple(t.shape)}; flatten it with .reshape(-1)")
    if t.numel() == 0 and not allow_empty:
        raise GifLiteError(f"{name} is empty; pass at least one of the {what}")
    t = t.to(dtype=torch.long, device=device if device is not None else t.device)
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= size:
            raise GifLiteError(
                f"{name} must lie in [0, {size}), got range [{lo}, {hi}]; negative indices are not counted "
                "from the end"
            )
    if unique and t.numel() > 1 and torch.unique(t).numel() != t.numel():
        raise GifLiteError(
            f"{name} holds {t.numel() - torch.unique(t).numel()} duplicated {what}; pass each once "
            f"(torch.unique({name}) drops them)"
        )
    if sorted_ and t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
        raise GifLiteError(
            f"{name} must be sorted ascending; values paired with it (delta[i] belongs to {name}[i]) would be "
            f"mis-assigned if it were sorted silently: sort both together (order = {name}.argsort()), "
            f"or pass {name}.sort().values when nothing is paired with it yet"
        )
    return t


def check_subset(
    subset: object, num_params: int, name: str = "subset", device: torch.device | str | None = None
) -> torch.Tensor:
    """A parameter subset ``P``: sorted ascending, unique, in ``[0, num_params)``, non-empty (see module doc)."""
    return check_indices(subset, num_params, name, what="parameter indices", sorted_=True, device=device)


def check_group(
    group: object,
    n: int,
    name: str = "group",
    *,
    allow_all: bool = False,
    ordered: bool = False,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Example indices in the caller's order (unique, in ``[0, n)``, non-empty, not every example unless
    ``allow_all``).  ``ordered`` (labels will be paired with it) refuses an unordered ``set``."""
    if ordered and isinstance(group, set | frozenset):
        raise GifLiteTypeError(
            f"{name} is a set, whose order is arbitrary, so per-example labels cannot be paired with it; "
            f"pass sorted({name}) and labels in that order"
        )
    g = check_indices(group, n, name, what="example indices", allow_empty=allow_empty)
    if not allow_all and g.numel() >= n:
        raise GifLiteError(f"{name} covers every example (all {n}); nothing would remain to train on")
    return g


# ---------------------------------------------------------------------------------------------- vectors, labels
def check_vector(
    vec: object,
    length: int,
    name: str,
    *,
    device: torch.device | str | None = None,
    finite: bool = True,
) -> torch.Tensor:
    """A 1-D floating tensor of ``length`` entries, finite, on ``device`` when given."""
    if not isinstance(vec, torch.Tensor):
        raise GifLiteTypeError(f"{name} must be a 1-D tensor of length {length}, got {_kind(vec)}")
    if vec.dim() != 1 or vec.numel() != length:
        hint = "; flatten it with .reshape(-1)" if vec.numel() == length else ""
        raise GifLiteError(
            f"{name} must be a flat vector of length {length}, got shape {tuple(vec.shape)}{hint}"
        )
    if not vec.is_floating_point():
        raise GifLiteError(
            f"{name} must be a floating-point vector, got dtype {vec.dtype}; convert with .double() or .float()"
        )
    if device is not None:
        check_device(vec, device, name)
    if finite and not bool(torch.isfinite(vec).all()):
        raise GifLiteError(f"{name} holds NaN or infinite entries; check how it was computed")
    return vec


def check_labels(
    labels: object,
    m: int,
    targets: torch.Tensor,
    name: str = "new_labels",
    *,
    num_classes: int | None = None,
) -> torch.Tensor:
    """New targets for a group of ``m`` examples, shaped like ``targets[group]`` and of its dtype.

    One label (int, 0-d tensor) is broadcast over the group.  For integer ``targets`` the labels must be
    integer-valued (``2.0`` is fine, ``2.5`` is not) and lie in ``[0, num_classes)`` when it is known.
    """
    if isinstance(labels, bool) or (
        isinstance(labels, torch.Tensor | np.ndarray) and labels.dtype in (torch.bool, np.bool_)
    ):
        raise GifLiteTypeError(f"{name} must be class labels or target values, got booleans")
    try:
        t = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as e:
        raise GifLiteTypeError(f"{name} must be a number or a tensor of them, got {_kind(labels)}") from e
    t = t.to(targets.device)
    shape = (m, *targets.shape[1:])
    if t.dim() == 0 and targets.dim() == 1:
        t = t.expand(m)
    if t.dim() >= 1 and t.shape[0] != m:
        raise GifLiteError(
            f"{name} has {t.shape[0]} entries for a group of {m}; pass one label per example (shape {shape}) "
            "or one label for all"
        )
    if tuple(t.shape) != shape:
        fix = "; drop the extra dimension with .reshape(-1)" if t.numel() == m and targets.dim() == 1 else ""
        raise GifLiteError(f"{name} has shape {tuple(t.shape)}; the group needs shape {shape}{fix}")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise GifLiteError(f"{name} holds NaN or infinite values")
    if not targets.is_floating_point():
        if t.is_floating_point() and not bool((t == t.round()).all()):
            bad = t[t != t.round()][0].item()
            raise GifLiteError(
                f"{name} must be integer class labels, got {bad}; it would be truncated to {int(bad)}. Pass integers"
            )
        if t.numel() and int(t.min()) < 0:
            raise GifLiteError(f"{name} must be class indices >= 0, got {int(t.min())}")
        if num_classes is not None and t.numel() and int(t.max()) >= num_classes:
            raise GifLiteError(
                f"{name} must lie in [0, {num_classes}) (the model's number of outputs), got {int(t.max())}"
            )
    return t.to(targets.dtype)


# ---------------------------------------------------------------------------------------------- solvers
def check_solver_options(
    solver: object,
    valid: Sequence[str],
    *,
    tol: object = None,
    max_iter: object = None,
    damping: object = 0.0,
    options: Mapping[str, object] | None = None,
    solver_fn: Callable[..., object] | None = None,
) -> tuple[float | None, int | None, float]:
    """The solver's name, ``tol`` (> 0 or None), ``max_iter`` (>= 1 or None), ``damping`` (>= 0) and
    keyword ``options`` (only the keyword-only options of ``solver_fn``, the named solver's function;
    ``direct`` takes none, and ``tol`` / ``max_iter``, checked all the same, do not apply to it)."""
    if not isinstance(solver, str) or solver not in valid:
        raise GifLiteError(
            f"unknown solver {solver!r} for this estimator; valid: {', '.join(map(repr, valid))}"
        )
    tol_f = None if tol is None else check_finite_number(tol, "tol", low=0.0, low_open=True)
    iters = check_max_iter(max_iter)
    damp = check_finite_number(damping, "damping", low=0.0)
    options = dict(options or {})
    if solver == "direct":
        if options:
            raise GifLiteError(
                f"solver='direct' solves exactly and takes no options, got {sorted(options)}; drop them "
                "(or choose an iterative solver)"
            )
        return tol_f, iters, damp
    if solver_fn is not None and options:
        params = inspect.signature(solver_fn).parameters
        allowed = {k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY} - {
            "tol",
            "max_iter",
        }
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise GifLiteError(
                f"unknown option(s) {unknown} for solver={solver!r}; it takes {sorted(allowed) or 'no options'}"
            )
    return tol_f, iters, damp


def check_symmetric(h: torch.Tensor, name: str) -> float:
    """Warn when the dense curvature ``h`` is not symmetric to rounding (symmetrising it would hide it):
    ``||h - h^T|| / ||h||`` above ``1e-6`` in float64, ``1e-2`` otherwise.  Returns that ratio."""
    norm = float(h.norm())
    asym = float((h - h.T).norm()) / norm if norm > 0 else 0.0
    if asym > (1e-6 if h.dtype == torch.float64 else 1e-2):
        _warn(
            f"{name} is not symmetric (||H - H^T|| / ||H|| = {asym:.1e}), so it is not the Hessian of a "
            "smooth loss; likely a module whose double backward torch computes wrongly (a parametrisation "
            "such as weight_norm, a custom autograd Function) or a non-differentiable operation. gif_lite "
            "uses its symmetric part",
            stacklevel=4,
        )
    return asym


def check_dense_block(rows: int, cols: int, dtype: torch.dtype, max_dense_params: int) -> None:
    """Refuse a dense ``rows x cols`` curvature block over ``max_dense_params ** 2`` entries (MemoryError)."""
    if rows * cols > max_dense_params**2:
        gib = rows * cols * torch.finfo(dtype).bits / 8 / 2**30
        raise MemoryError(
            f"a dense curvature block of {rows:,} x {cols:,} entries needs {gib:,.1f} GiB in {dtype}; the "
            f"limit is max_dense_params={max_dense_params:,} (squared). Use a matrix-free solver (minres, "
            "cg, lsqr), or raise max_dense_params if you have the memory"
        )
