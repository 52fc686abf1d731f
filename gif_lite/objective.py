"""The training objective as a function of the flat parameter vector, with its gradient and HVPs.

``L(theta) = sum_b (n_b / n) * loss_fn(model(x_b), y_b) + weight_decay / 2 * ||theta||^2``

where ``loss_fn`` returns the *mean* loss of a batch, so ``L`` is the mean loss over all ``n``
examples plus the L2 term.  Hessian-vector products ``H v`` come in three flavours that give the same
numbers (a test checks each against the dense Hessian):

* ``"reuse"``: build ``grad L`` once with ``create_graph=True`` and differentiate ``<grad L, v>``
  again for every ``v`` (Pearlmutter's trick on a kept graph, ~1 gradient per HVP).  Rebuilt
  automatically when the parameters change.  Needs the whole graph in memory.
* ``"double_backward"``: per batch, gradient with ``create_graph=True`` then one vector-Jacobian
  product (~2 gradients per HVP, memory of one batch).
* ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad`` (~3 gradients per HVP).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from . import checks
from .params import flat_params, trainable_parameters
from .types import Data, LossFn

__all__ = ["DEFAULT_MAX_DENSE_PARAMS", "HESSIAN_CHUNK", "HVP_METHODS", "HvpMethod", "Objective", "l2_penalty"]

HVP_METHODS = ("reuse", "double_backward", "forward_over_reverse")
HvpMethod = Literal["auto", "reuse", "double_backward", "forward_over_reverse"]

#: Models with more parameters than this refuse a dense Hessian unless ``max_dense_params`` is raised.
DEFAULT_MAX_DENSE_PARAMS = 20_000
#: Vectors per batched backward pass, in :meth:`Objective.hvp_batch` and :meth:`Objective.hessian`:
#: measured (``bench/attribution.py``, 2 threads) building the dense Hessian with 8 / 16 / 32 / 64 / 128
#: columns per pass: float64 CNN 41 / 30 / 38 / 50 / 53 s (larger blocks fall out of the caches); digits
#: MLP 2.42 / 2.06 / 2.05 / 2.05 / 1.83 s, flat within the noise.  The pass's memory grows with the block.
HESSIAN_CHUNK = 16

#: The parameter values and the version counters of the parameters and buffers.
_StateKey = tuple[torch.Tensor, tuple[int, ...]]


def l2_penalty(params: Iterable[torch.Tensor], weight_decay: float) -> torch.Tensor:
    """``weight_decay / 2 * ||theta||^2``, differentiable: the L2 term of L(theta) for training and influence alike.

    Exactly zero (no graph) when ``weight_decay`` is 0.
    """
    params = list(params)
    if weight_decay == 0.0:
        return torch.zeros((), dtype=params[0].dtype, device=params[0].device)
    return 0.5 * weight_decay * torch.stack([p.pow(2).sum() for p in params]).sum()


def _check_chunk(chunk: object) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise checks.GifLiteError(f"chunk must be a positive int (columns per pass), got {chunk!r}")


def _batched_vjp(
    outputs: torch.Tensor | tuple[torch.Tensor, ...],
    inputs: Sequence[torch.Tensor],
    rows: Sequence[torch.Tensor],
    chunk: int,
) -> tuple[torch.Tensor, ...]:
    """``J^T v`` for every row ``v`` (``rows``: one tensor per output, batch first), ``chunk`` rows per
    backward pass, keeping the graph.

    ``torch.func.vmap`` over ``torch.autograd.grad``: the same numbers as autograd's
    ``is_grads_batched=True``, whose older vmap lacks batching rules for some double-backward kernels
    (float64 convolutions fall back to a loop over the rows there); measured 1.3x faster on the digits
    MLP and 1.4-1.9x on the float64 CNN of ``bench/attribution.py``.
    """

    def one(*v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(outputs, inputs, grad_outputs=v, retain_graph=True)

    parts = [torch.func.vmap(one)(*(r[s : s + chunk] for r in rows)) for s in range(0, len(rows[0]), chunk)]
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def _as_batches(data: Data | Iterable[Data]) -> list[Data] | Iterable[Data]:
    """The batches of ``data`` (see :func:`gif_lite.checks.check_batches` for what is accepted)."""
    return checks.check_batches(data, "data")


def _check_distributed(distributed: bool) -> bool:
    """``distributed=True`` needs an initialised default ``torch.distributed`` process group."""
    if not isinstance(distributed, bool):
        raise checks.GifLiteTypeError(f"distributed must be True or False, got {distributed!r}")
    if distributed and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError(
            "distributed=True needs the default torch.distributed process group: call "
            "torch.distributed.init_process_group(...) first (torchrun sets up the environment for it)"
        )
    return distributed


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over every rank of the default process group (a new tensor)."""
    out = t.detach().clone()
    torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
    return out


class Objective:
    """Mean loss of ``model`` over ``data`` plus ``weight_decay / 2 * ||theta||^2``.

    ``data`` is an ``(inputs, targets)`` pair of tensors (or numpy arrays), a ``TensorDataset``, or an
    iterable of such batches (a list, a ``DataLoader``: shuffled is fine, the objective sums over every
    example; ``drop_last=True`` with shuffling is refused).  ``loss_fn(outputs, targets)`` must return the
    batch mean.  All of it is checked on construction (see :mod:`gif_lite.checks`), including one probe of
    ``loss_fn`` on a few examples; every later call checks that the model's trainable parameters and modes
    are still those it was built with.

    ``distributed=True``: ``data`` is this rank's shard; example counts, losses, gradients, HVPs and
    Hessian columns are summed over the default ``torch.distributed`` process group (each batch
    weighted by ``n_b / n`` with ``n`` the total over all ranks), so every estimator runs unchanged
    and every rank gets the full-data answer.  Every rank must make the same calls in the same order.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Data | Iterable[Data],
        weight_decay: float = 0.0,
        hvp_method: HvpMethod = "auto",
        max_dense_params: int = DEFAULT_MAX_DENSE_PARAMS,
        distributed: bool = False,
    ) -> None:
        checks.check_model(model)
        loss_fn = checks.check_loss_fn(loss_fn)
        weight_decay = checks.check_finite_number(weight_decay, "weight_decay", low=0.0)
        if hvp_method != "auto" and hvp_method not in HVP_METHODS:
            raise checks.GifLiteError(
                f"unknown hvp_method {hvp_method!r}; valid: 'auto', {', '.join(map(repr, HVP_METHODS))}"
            )
        checks.check_modes(model)
        self.model = model
        self.loss_fn = loss_fn
        self.weight_decay = float(weight_decay)
        self.max_dense_params = int(max_dense_params)
        self.params = trainable_parameters(model)
        if not self.params:
            raise checks.GifLiteError("model has no trainable parameters (all have requires_grad=False)")
        self.num_params = sum(p.numel() for p in self.params)
        first = self.params[0]
        self.dtype, self.device = first.dtype, first.device
        if self.weight_decay >= (torch.finfo(self.dtype).max / self.num_params) ** 0.5:
            raise checks.GifLiteError(
                f"weight_decay={weight_decay:g} is so large that weight_decay**2 overflows {self.dtype} inside the "
                "solvers; rescale the problem (a weight decay this large leaves nothing for the data to decide)"
            )
        self.distributed = _check_distributed(distributed)
        self.batches = _as_batches(data)
        self.num_examples = self._count_and_check()
        batch0 = next(iter(self.batches))
        x0, y0, _ = next(iter(self._prepared([batch0])))
        checks.check_loss_on(model, loss_fn, x0, y0, self.params)
        single = isinstance(self.batches, list) and len(self.batches) == 1
        self.hvp_method: str = (
            ("reuse" if single else "double_backward") if hvp_method == "auto" else hvp_method
        )
        self.hvp_calls = 0  #: number of HVPs evaluated so far (benchmarks and results report it)
        self._state: tuple[_StateKey, dict[Any, Any]] | None = None

    # ------------------------------------------------------------------ data
    def _count_and_check(self) -> int:
        n = 0
        for i, batch in enumerate(checks.bounded(self.batches)):
            x, _ = checks.check_data_pair(batch, f"data batch {i}")
            n += int(x.shape[0])
        if self.distributed:
            n = int(_all_reduce(torch.tensor(float(n), dtype=torch.float64, device=self.device)))
        if n == 0:
            raise checks.GifLiteError("data is empty: the objective needs at least one example")
        return n

    def _check_state(self) -> None:
        """The model still has the parameters and modes this objective was built with."""
        now = trainable_parameters(self.model)
        if len(now) != len(self.params) or any(a is not b for a, b in zip(now, self.params)):
            raise checks.GifLiteError(
                "the model's trainable parameters changed since this Objective was built (a parameter was "
                "frozen, unfrozen or replaced); build a new Objective for the model as it is now"
            )
        checks.check_modes(self.model, what="this Objective")

    def _prepared(
        self, batches: Iterable[Data] | None = None
    ) -> Iterable[tuple[torch.Tensor, torch.Tensor, float]]:
        """Batches moved to the model's device (floating ones to its dtype), with their weight ``n_b / n``.

        Batches on another device (e.g. a CPU ``DataLoader`` for a CUDA model) are moved here, once per
        batch and pass; that is the one accepted cross-device input.
        """
        for batch in self.batches if batches is None else batches:
            x, y = checks.check_data_pair(batch, "data batch", finite=False)
            x = x.to(self.device, self.dtype) if x.is_floating_point() else x.to(self.device)
            y = y.to(self.device, self.dtype) if y.is_floating_point() else y.to(self.device)
            yield x, y, x.shape[0] / self.num_examples

    def _data_loss(self) -> torch.Tensor:
        """The mean loss over all examples (no L2 term), with its autograd graph."""
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        for x, y, w in self._prepared():
            total = total + w * self._batch_loss(x, y)
        return total

    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(checks.run_forward(self.model, x, "data"), y)
        return checks.check_loss_value(loss, attached=torch.is_grad_enabled())

    # ------------------------------------------------------------------ values
    def theta(self) -> torch.Tensor:
        """The current flat parameters (a detached copy)."""
        return flat_params(self.model)

    def loss(self) -> float:
        """L(theta): mean loss plus the L2 term."""
        self._check_state()
        with torch.no_grad():
            data_loss = self._data_loss()
            if self.distributed:
                data_loss = _all_reduce(data_loss)
            total = data_loss + l2_penalty(self.params, self.weight_decay)
        value = float(total)
        if value != value or value in (float("inf"), float("-inf")):
            raise FloatingPointError(
                "the loss is not finite; check the data, the model's outputs and the loss_fn"
            )
        return value

    def gradient(self) -> torch.Tensor:
        """grad L(theta) as a flat vector (includes weight_decay * theta)."""
        self._check_state()
        flat = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        with torch.enable_grad():
            for x, y, w in self._prepared():
                grads = torch.autograd.grad(w * self._batch_loss(x, y), self.params)
                flat += torch.cat([g.reshape(-1) for g in grads])
        if self.distributed:
            flat = _all_reduce(flat)
        flat += self.weight_decay * self.theta()
        if not torch.isfinite(flat).all():
            raise FloatingPointError("the gradient is not finite; check the data and the model's outputs")
        return flat

    # ------------------------------------------------------------------ HVPs
    def _split(self, v: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for p in self.params:
            out.append(v[start : start + p.numel()].view_as(p))
            start += p.numel()
        return out

    def _kept_graph(self) -> tuple[torch.Tensor, ...]:
        """grad L with its graph kept, rebuilt if the parameters changed since it was built."""
        # Rebuild when the values changed, or when a parameter was written in place at all (its version
        # counter moved): autograd refuses a graph whose saved tensors were modified, even back to the same values.
        cache = self.state_cache()
        if "graph" not in cache:
            with torch.enable_grad():
                cache["graph"] = torch.autograd.grad(self._data_loss(), self.params, create_graph=True)
        return cache["graph"]

    def state_cache(self) -> dict[Any, Any]:
        """A dict for results that hold only at the current parameters: emptied (and a new one returned)
        as soon as a parameter value changes or a parameter or buffer is written in place (version
        counters; e.g. BatchNorm statistics), and by :meth:`release`.

        It holds the kept gradient graph, the dense Hessian and the factorisations attribution reuses.
        """
        key = (self.theta(), tuple(t._version for t in (*self.params, *self.model.buffers())))
        if self._state is None or self._state[0][1] != key[1] or not torch.equal(self._state[0][0], key[0]):
            self._state = None  # free the old graph and Hessian before anything new is built
            self._state = (key, {})
        return self._state[1]

    def release(self) -> None:
        """Drop everything cached for the current parameters: the kept gradient graph
        (``hvp_method="reuse"``), the dense Hessian and attribution's factorisations."""
        self._state = None

    def _hvp_reuse(self, v: torch.Tensor) -> torch.Tensor:
        grads = self._kept_graph()
        hv = torch.autograd.grad(grads, self.params, grad_outputs=self._split(v), retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv])

    def _hvp_double_backward(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        vs = self._split(v)
        with torch.enable_grad():
            for x, y, w in self._prepared():
                grads = torch.autograd.grad(w * self._batch_loss(x, y), self.params, create_graph=True)
                hv = torch.autograd.grad(grads, self.params, grad_outputs=vs)
                out += torch.cat([h.reshape(-1) for h in hv])
        return out

    def _hvp_forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, grad, jvp

        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        primals = {n: p.detach() for n, p in zip(names, self.params)}
        tangents = dict(zip(names, self._split(v)))
        out = torch.zeros_like(v)
        for x, y, w in self._prepared():

            def f(ps: dict[str, torch.Tensor], x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                return self.loss_fn(functional_call(self.model, ps, (x,)), y)

            hv = jvp(grad(f), (primals,), (tangents,))[1]
            out += w * torch.cat([hv[n].reshape(-1) for n in names])
        return out

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H v, with H the Hessian of L at the current parameters (weight decay included)."""
        self._check_state()
        checks.check_vector(v, self.num_params, "v", device=self.device)
        v = v.to(self.dtype)
        if self.hvp_method == "reuse":
            hv = self._hvp_reuse(v)
        elif self.hvp_method == "double_backward":
            hv = self._hvp_double_backward(v)
        else:
            hv = self._hvp_forward_over_reverse(v)
        hv = hv.detach()
        if self.distributed:
            hv = _all_reduce(hv)
        hv = hv + self.weight_decay * v
        self.hvp_calls += 1
        if not torch.isfinite(hv).all():
            raise FloatingPointError(
                "the Hessian-vector product is not finite; check the data and the model's outputs "
                "(the loss may overflow), or solve with a larger damping"
            )
        return hv

    def _split_batch(self, vs: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for p in self.params:
            out.append(vs[:, start : start + p.numel()].reshape(vs.shape[0], *p.shape))
            start += p.numel()
        return out

    def hvp_batch(self, vs: torch.Tensor) -> torch.Tensor:
        """``H v`` for every row ``v`` of ``vs`` (``s x num_params``), ``HESSIAN_CHUNK`` rows per batched
        backward pass.

        Same numbers as :meth:`hvp` row by row, at a fraction of the cost: ``torch.func.vmap`` over the
        vector-Jacobian product on the kept gradient graph (``"reuse"``) or on each
        batch's graph (``"double_backward"``); ``"forward_over_reverse"`` loops over the rows.
        Measured on the digits MLP (2,410 parameters, 1,295 examples) for 50 rows: 0.6-0.7 gradients
        per row, against about 1 for 50 separate :meth:`hvp` calls (``bench/attribution.py``).
        """
        if not isinstance(vs, torch.Tensor) or vs.dim() != 2 or vs.shape[1] != self.num_params:
            shape = tuple(vs.shape) if isinstance(vs, torch.Tensor) else type(vs).__name__
            raise checks.GifLiteError(f"vs must be a 2-D tensor of shape (s, {self.num_params}), got {shape}")
        if not vs.is_floating_point() or not bool(torch.isfinite(vs).all()):
            raise checks.GifLiteError("vs must be a floating tensor without NaN or infinite entries")
        vs = vs.to(self.device, self.dtype)
        s = vs.shape[0]
        if s == 0:
            return vs.clone()
        if self.hvp_method == "reuse":
            rows = _batched_vjp(self._kept_graph(), self.params, self._split_batch(vs), HESSIAN_CHUNK)
            out = torch.cat([r.reshape(s, -1) for r in rows], dim=1)
        elif self.hvp_method == "double_backward":
            out = torch.zeros_like(vs)
            split = self._split_batch(vs)
            with torch.enable_grad():
                for x, y, w in self._prepared():
                    grads = torch.autograd.grad(w * self._batch_loss(x, y), self.params, create_graph=True)
                    rows = _batched_vjp(grads, self.params, split, HESSIAN_CHUNK)
                    out += torch.cat([r.reshape(s, -1) for r in rows], dim=1)
        else:
            out = torch.stack([self._hvp_forward_over_reverse(v) for v in vs])
        out = out.detach() + self.weight_decay * vs
        self.hvp_calls += s
        if not torch.isfinite(out).all():
            raise FloatingPointError(
                "the Hessian-vector products are not finite; check the data and the model's outputs "
                "(the loss may overflow), or solve with a larger damping"
            )
        return out

    def matmat(self, vs: torch.Tensor) -> torch.Tensor:
        """``H v`` for every row of ``vs``: :meth:`hvp_batch`, under the name every curvature operator shares."""
        self._check_state()
        return self.hvp_batch(vs)

    @property
    def objective(self) -> Objective:
        """The objective itself: the exact curvature operator stands for itself (see ``gl.HessianOperator``)."""
        return self

    # ------------------------------------------------------------------ dense oracle
    def hessian(self, chunk: int = HESSIAN_CHUNK) -> torch.Tensor:
        """The dense, symmetrised Hessian (num_params x num_params): small models only.

        Built from batched HVPs (``chunk`` columns per backward pass) on one graph, once per parameter
        value: it is cached on the objective, so every later dense solve (``solver="direct"``, attribution)
        reuses it until a parameter or buffer changes or :meth:`release` is called.  Returns a copy.
        Refuses models over ``max_dense_params``.
        """
        self._check_state()
        _check_chunk(chunk)
        checks.check_dense_block(self.num_params, self.num_params, self.dtype, self.max_dense_params)
        cache = self.state_cache()
        if "hessian" not in cache:
            h = self._columns(torch.arange(self.num_params, device=self.device), chunk)
            checks.check_symmetric(h, "the Hessian")
            cache["hessian"] = 0.5 * (h + h.T)
        return cache["hessian"].clone()

    def hessian_columns(self, columns: torch.Tensor, chunk: int = HESSIAN_CHUNK) -> torch.Tensor:
        """The dense block ``H[:, columns]`` (num_params x len(columns)), one exact HVP per column.

        For GIF and FIF only ``H[:, P]`` is needed, so the dense oracle costs ``|P|`` HVPs, not
        ``num_params``; sliced from the cached Hessian when :meth:`hessian` has built it for the current
        parameters.  Refuses blocks larger than ``max_dense_params ** 2`` entries.
        """
        self._check_state()
        _check_chunk(chunk)
        columns = checks.check_indices(columns, self.num_params, "columns", unique=False, device=self.device)
        checks.check_dense_block(self.num_params, int(columns.numel()), self.dtype, self.max_dense_params)
        hessian = self.state_cache().get("hessian")
        return hessian[:, columns] if hessian is not None else self._columns(columns, chunk)

    def _columns(self, columns: torch.Tensor, chunk: int) -> torch.Tensor:
        """``H[:, columns]`` from batched HVPs, for checked ``columns`` and ``chunk``."""
        k, c = self.num_params, int(columns.numel())
        columns = columns.to(self.device)
        h = torch.empty(c, k, dtype=self.dtype, device=self.device)
        with torch.enable_grad():
            grads = torch.autograd.grad(self._data_loss(), self.params, create_graph=True)
            flat_grad = torch.cat([g.reshape(-1) for g in grads])
            for start in range(0, c, chunk):
                idx = columns[start : start + chunk]
                block = torch.zeros(idx.numel(), k, dtype=self.dtype, device=self.device)
                block[torch.arange(idx.numel(), device=self.device), idx] = 1.0
                rows = _batched_vjp(flat_grad, self.params, [block], chunk)
                h[start : start + chunk] = torch.cat([r.reshape(idx.numel(), -1) for r in rows], dim=1)
                if self.distributed:
                    h[start : start + chunk] = _all_reduce(h[start : start + chunk].detach())
                h[torch.arange(start, start + idx.numel(), device=self.device), idx] += self.weight_decay
        self.hvp_calls += c
        if not torch.isfinite(h).all():
            raise FloatingPointError("the Hessian is not finite; check the data and the model's outputs")
        return h.T.detach()
