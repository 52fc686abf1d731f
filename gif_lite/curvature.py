"""Curvature operators: the one protocol every estimator and attribution solve with, and the approximations.

Every curvature is a symmetric ``num_params x num_params`` matrix ``C`` on the flat parameter vector that
satisfies :class:`HessianOperator`: ``num_params``, ``dtype``, ``device``, ``num_examples``, ``hvp_calls``,
``hvp(v) = C v``, ``matmat(V)`` (rows), ``hessian_columns(P)``, ``hessian()`` (size-guarded),
``state_cache()``, optional ``inverse_hvp(v, damping)``, and ``objective``: the
:class:`~gif_lite.Objective` it stands for, which supplies gradients.  The Objective itself is the exact
operator (``C = H``); every other one is built from an Objective (``KFAC(obj)``, ``EKFAC(obj)``,
``LowRank(obj, rank)``, ``StochasticHessian(obj, batch_size)``, ``DenseOperator(H, objective=obj)``).
So ``influence(op, g)``, ``frozen_influence``, ``projected_influence``, ``generalized_influence``, the
second-order estimators, ``removal_effects(op, test)`` and ``self_influence(op)`` run unchanged on any of
them, equal to dense algebra on ``op.hessian() + damping * I``, and ``solver="direct"`` uses the
operator's own ``inverse_hvp`` when it has one (EK-FAC attribution is ``removal_effects(EKFAC(obj), test,
damping=gamma)``).

* :class:`KFAC` and :class:`EKFAC` (Martens & Grosse 2015; Grosse & Martens 2016 for convolutions;
  George et al. 2018; Grosse et al. 2023): block-diagonal over the ``Linear`` and ``Conv2d`` layers, each
  block of the Gauss-Newton matrix ``G = (1/n) sum_i J_i^T Lambda_i J_i`` replaced by a Kronecker product
  ``S (x) A`` of the pre-activation-gradient covariance ``S`` and the input covariance ``A``.  Written in
  the eigenbases ``S = Q_S L_S Q_S^T``, ``A = Q_A L_A Q_A^T``, a block is ``Q diag(d) Q^T`` with
  ``Q = Q_S (x) Q_A`` and ``d = L_S (x) L_A`` (K-FAC) or ``d_k = (1/n) sum_i,c (q_k^T grad_ic)^2`` (EK-FAC:
  the exact diagonal of the block in the Kronecker eigenbasis).  Inverse products are exact and cheap.
* :class:`LowRank` (Schioppa et al. 2022, "Arnoldi"): ``H ~ U diag(lambda) U^T`` from the top
  eigenpairs of ``k`` Lanczos steps (Arnoldi on a symmetric operator) on the exact HVP.
* :class:`StochasticHessian`: mini-batch Hessians of the objective, for LiSSA and the Krylov solvers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol, cast, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .objective import DEFAULT_MAX_DENSE_PARAMS, Objective
from .params import check_vector, flat_offsets, trainable_parameters, weight_layers
from .spectrum import lanczos_steps
from .types import Data, LossFn

__all__ = [
    "EKFAC",
    "KFAC",
    "CurvatureOperator",
    "DenseOperator",
    "FisherKind",
    "HessianOperator",
    "LossKind",
    "LowRank",
    "StochasticHessian",
    "as_operator",
]

LossKind = Literal["cross_entropy", "mse"]
FisherKind = Literal["type-2", "mc", "empirical"]


@runtime_checkable
class HessianOperator(Protocol):
    """What every estimator and both attribution functions need from a curvature ``C``: the protocol that
    :class:`~gif_lite.Objective` (``C = H``, exact) and every operator here satisfy.

    ``hvp(v) = C v``; ``matmat(V)`` the same for every row of a ``(s, num_params)`` block; ``hessian_columns(P)``
    the dense ``C[:, P]`` and ``hessian()`` the dense ``C`` (both refuse sizes over the limit);
    ``hvp_calls`` counts products; ``objective`` is the :class:`~gif_lite.Objective` that ``C`` stands for
    (it supplies gradients, the example count and the weight decay); ``state_cache()`` a dict for results
    that hold only for the current ``C``.  Optional: ``inverse_hvp(v, damping)``, the exact
    ``pinv(C + damping I) v``, which ``solver="direct"`` uses when present.
    """

    num_params: int
    dtype: torch.dtype
    device: torch.device
    num_examples: int
    hvp_calls: int

    @property
    def objective(self) -> Objective: ...

    def hvp(self, v: torch.Tensor) -> torch.Tensor: ...

    def matmat(self, vs: torch.Tensor) -> torch.Tensor: ...

    def hessian_columns(self, columns: torch.Tensor) -> torch.Tensor: ...

    def hessian(self) -> torch.Tensor: ...

    def state_cache(self) -> dict[Any, Any]: ...


def as_operator(op: object, name: str = "obj") -> HessianOperator:
    """``op`` if it is a curvature operator (an :class:`~gif_lite.Objective` or any :class:`HessianOperator`),
    else a :class:`~gif_lite.GifLiteTypeError` naming what is missing."""
    if isinstance(op, Objective | CurvatureOperator):
        return cast(HessianOperator, op)
    missing = [a for a in ("num_params", "dtype", "device", "hvp", "matmat", "hessian_columns", "hessian",
                           "objective", "state_cache", "hvp_calls", "num_examples") if not hasattr(op, a)]  # fmt: skip
    if missing:
        raise checks.GifLiteTypeError(
            f"{name} must be a gif_lite.Objective or a curvature operator (gl.KFAC(obj), gl.EKFAC(obj), "
            f"gl.LowRank(obj, rank), gl.StochasticHessian(obj, ...), gl.DenseOperator(H, objective=obj)), got "
            f"{type(op).__name__}, which lacks {', '.join(missing)}"
        )
    return cast(HessianOperator, op)


class CurvatureOperator:
    """A symmetric operator ``C`` on the flat parameters that the estimators accept in place of ``H``.

    Subclasses set ``num_params``, ``dtype``, ``device``, ``num_examples`` and ``_objective`` (the
    :class:`~gif_lite.Objective` it stands for, or a callable that builds it on first use) and implement
    ``_apply(V)`` = ``V C`` for a ``(k, num_params)`` batch of row vectors.  ``hvp_calls`` counts products
    with ``C``.  ``C`` is fixed once built, so :meth:`state_cache` is one dict for the operator's life.
    """

    num_params: int
    dtype: torch.dtype
    device: torch.device
    num_examples: int = 0
    hvp_calls: int = 0
    max_dense_params: int = DEFAULT_MAX_DENSE_PARAMS
    _objective: Objective | Callable[[], Objective] | None = None
    _cache: dict[Any, Any] | None = None

    def _apply(self, vs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def objective(self) -> Objective:
        """The :class:`~gif_lite.Objective` this operator stands for (gradients, examples, weight decay)."""
        if callable(self._objective) and not isinstance(self._objective, Objective):
            self._objective = self._objective()
        if self._objective is None:
            raise checks.GifLiteError(
                f"this {type(self).__name__} was built without an Objective; build it from one, e.g. "
                f"gl.{type(self).__name__}(obj), to compute gradients with it"
            )
        return self._objective

    def state_cache(self) -> dict[Any, Any]:
        """A dict for results that hold for this operator (it never changes once built)."""
        if self._cache is None:
            self._cache = {}
        return self._cache

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """``C v`` (the name the estimators call; ``C`` stands in for the Hessian)."""
        check_vector(v, self.num_params, "v")
        self.hvp_calls += 1
        return self._apply(v.detach().to(self.device, self.dtype)[None])[0]

    def matmat(self, vs: torch.Tensor) -> torch.Tensor:
        """``C v`` for every row ``v`` of the ``(s, num_params)`` block ``vs`` (``s`` products)."""
        rows = _rows(vs, self.num_params, "vs")
        self.hvp_calls += rows.shape[0]
        if rows.shape[0] == 0:
            return rows.detach().to(self.device, self.dtype).clone()
        return self._apply(rows.detach().to(self.device, self.dtype))

    def hessian_columns(self, columns: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """The dense block ``C[:, columns]`` (num_params x len(columns)); refuses blocks over the size limit."""
        columns = checks.check_indices(columns, self.num_params, "columns", unique=False, device=self.device)
        k, c = self.num_params, int(columns.numel())
        checks.check_dense_block(k, c, self.dtype, self.max_dense_params)
        out = torch.empty(k, c, dtype=self.dtype, device=self.device)
        for start in range(0, c, chunk):
            idx = columns[start : start + chunk]
            eye = torch.zeros(idx.numel(), k, dtype=self.dtype, device=self.device)
            eye[torch.arange(idx.numel()), idx] = 1.0
            out[:, start : start + idx.numel()] = self._apply(eye).T
            self.hvp_calls += idx.numel()
        return out

    def hessian(self, chunk: int = 256) -> torch.Tensor:
        """The dense, symmetrised ``C`` (small models only)."""
        c = self.hessian_columns(torch.arange(self.num_params), chunk)
        checks.check_symmetric(c, f"this {type(self).__name__}")
        return 0.5 * (c + c.T)


def _check_damping(damping: float, name: str = "damping") -> float:
    return checks.check_finite_number(damping, name, low=0.0)


def _batches(data: Data | Iterable[Data]) -> list[Data]:
    """One ``(inputs, targets)`` pair as a one-batch list; any iterable of pairs as a list (two passes read it)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return [cast(Data, (data[0], data[1]))]
    return list(cast(Iterable[Data], data))


def _rows(v: torch.Tensor, num_params: int, name: str = "v") -> torch.Tensor:
    """A vector or a batch of row vectors as ``(k, num_params)``, checked."""
    if isinstance(v, torch.Tensor) and v.dim() == 2:
        if v.shape[1] != num_params:
            raise checks.GifLiteError(
                f"{name} must have {num_params} columns (one row per vector), got shape {tuple(v.shape)}"
            )
        if not v.is_floating_point():
            raise checks.GifLiteTypeError(f"{name} must be a floating tensor, got {v.dtype}")
        if not torch.isfinite(v).all():
            raise checks.GifLiteError(f"{name} holds NaN or infinite entries")
        return v
    check_vector(v, num_params, name)
    return v[None]


def _pinv_diag(d: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    """Element-wise ``1 / d``, with ``0`` where ``|d| <= rtol * max |d|`` (the pseudo-inverse's cut-off)."""
    cut = rtol * float(d.abs().max()) if d.numel() else 0.0
    return torch.where(d.abs() > cut, 1.0 / torch.where(d == 0, torch.ones_like(d), d), torch.zeros_like(d))


# ------------------------------------------------------------------------------------ K-FAC / EK-FAC
def _loss_kind(loss_fn: LossFn) -> LossKind:
    """The loss kind whose Gauss-Newton factorisation K-FAC knows, read from an Objective's ``loss_fn``."""
    if loss_fn is F.cross_entropy:
        return "cross_entropy"
    if loss_fn is F.mse_loss:
        return "mse"
    if type(loss_fn) is nn.CrossEntropyLoss and loss_fn.reduction == "mean":
        if loss_fn.weight is None and loss_fn.label_smoothing == 0.0:
            return "cross_entropy"
    if type(loss_fn) is nn.MSELoss and loss_fn.reduction == "mean":
        return "mse"
    raise checks.GifLiteError(
        f"K-FAC knows the Gauss-Newton factors of two losses, the mean cross-entropy (F.cross_entropy, "
        f"nn.CrossEntropyLoss()) and the mean squared error (F.mse_loss, nn.MSELoss()); obj.loss_fn is "
        f"{getattr(loss_fn, '__name__', type(loss_fn).__name__)}. Build the Objective with one of them"
    )


class _Layer:
    """One Linear/Conv2d layer: where its weight and bias sit in the flat vector, and its factors."""

    def __init__(self, name: str, module: nn.Linear | nn.Conv2d, offsets: dict[int, int]) -> None:
        self.name, self.module = name, module
        w, b = module.weight, module.bias
        self.out_dim = w.shape[0]
        self.in_dim = w[0].numel() + (1 if b is not None else 0)  # bias as an extra input of 1
        self.w_off, self.w_size = offsets[id(w)], w.numel()
        self.b_off = offsets[id(b)] if b is not None else -1
        self.a = torch.zeros(0)  # input covariance A, (in_dim, in_dim)
        self.s = torch.zeros(0)  # pre-activation-gradient covariance S, (out_dim, out_dim)
        self.q_a = self.q_s = self.d = torch.zeros(0)
        self.inputs: torch.Tensor | None = None
        self.output: torch.Tensor | None = None

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs as ``(n, T, in_dim)``: T = 1 for Linear, the output positions for Conv2d (with a 1 for the bias)."""
        m = self.module
        if isinstance(m, nn.Conv2d):
            pad = cast(tuple[int, ...], m.padding)  # numeric: strings are refused in _find_layers
            cols = F.unfold(x, m.kernel_size, m.dilation, pad, m.stride).transpose(1, 2)  # (n, T, in)
        else:
            cols = x.reshape(x.shape[0], -1, x.shape[-1])  # leading dimensions after the batch are positions
        if m.bias is not None:
            cols = torch.cat([cols, torch.ones_like(cols[..., :1])], dim=-1)
        return cols

    def out_grads(self, g: torch.Tensor) -> torch.Tensor:
        """Output gradients as ``(n, T, out_dim)``."""
        if isinstance(self.module, nn.Conv2d):
            return g.reshape(g.shape[0], self.out_dim, -1).transpose(1, 2)
        return g.reshape(g.shape[0], -1, self.out_dim)

    def block(self, vs: torch.Tensor) -> torch.Tensor:
        """Rows of ``vs`` (k, num_params) -> this layer's parameters as ``(k, out_dim, in_dim)``."""
        k = vs.shape[0]
        w = vs[:, self.w_off : self.w_off + self.w_size].reshape(k, self.out_dim, -1)
        if self.b_off >= 0:
            w = torch.cat([w, vs[:, self.b_off : self.b_off + self.out_dim, None]], dim=2)
        return w

    def scatter(self, out: torch.Tensor, blk: torch.Tensor) -> None:
        k = blk.shape[0]
        if self.b_off >= 0:
            out[:, self.b_off : self.b_off + self.out_dim] = blk[:, :, -1]
            blk = blk[:, :, :-1]
        out[:, self.w_off : self.w_off + self.w_size] = blk.reshape(k, -1)


class KFAC(CurvatureOperator):
    """K-FAC: the Gauss-Newton matrix of ``model`` on ``data``, Kronecker-factored per Linear/Conv2d layer.

    For a layer with inputs ``a`` (a patch of ``in_dim`` values for Conv2d, a trailing 1 for the bias) and
    output gradients ``g`` at ``T`` positions (T = 1 for Linear), with ``n`` examples and ``c`` running over
    the pseudo-gradients of each example (see ``fisher``):

    ``A = 1/(n T) sum_{i,t} a_it a_it^T``,  ``S = 1/n sum_{i,c,t} g_ict g_ict^T``,  block ``~ S (x) A``

    (K-FAC "expand" for convolutions), acting on the layer's weight ``W`` (out x in, bias as the last
    column) as ``W -> S W A``.  Layers are independent (block-diagonal); ``weight_decay * I`` is added so
    the operator stands for the objective ``L`` of :class:`~gif_lite.Objective` with the same weight decay.

    ``loss``: ``"cross_entropy"`` (``F.cross_entropy``, batch mean) or ``"mse"`` (``F.mse_loss``, mean over
    all ``n * d`` entries, so its Hessian in the outputs is ``(2/d) I``).  ``fisher``:

    * ``"type-2"`` (default): the exact GGN.  The loss Hessian in the logits is written as
      ``Lambda = sum_c s_c s_c^T`` (cross-entropy: ``s_c = sqrt(p_c) (p - e_c)``; MSE: ``sqrt(2/d) e_c``)
      and each ``s_c`` is back-propagated: ``C`` backward passes per batch, deterministic.
    * ``"mc"``: the true Fisher with one label per example sampled from the model (``y ~ softmax``,
      generator seeded by ``seed``), ``s = p - e_y``: one backward pass, an unbiased estimate of type-2.
    * ``"empirical"``: the empirical Fisher, ``s = grad of the loss at the observed label``.

    Every trainable parameter must belong to a Linear or Conv2d (``groups=1``) layer called once per
    forward; freeze others (``requires_grad_(False)``), e.g. BatchNorm in eval mode.
    """

    corrected = False

    def __init__(
        self,
        obj: Objective | nn.Module,
        data: Data | Iterable[Data] | None = None,
        loss: LossKind | None = None,
        fisher: FisherKind = "type-2",
        weight_decay: float | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(obj, Objective):  # the one form: the model, data, loss kind and weight decay of obj
            if data is not None or loss is not None or weight_decay is not None:
                raise checks.GifLiteError(
                    f"{type(self).__name__}(obj) reads the data, the loss and the weight decay from the Objective; "
                    "drop data=, loss= and weight_decay= (or build another Objective)"
                )
            model, batches = obj.model, cast(Iterable[Data], obj.batches)
            loss, weight_decay = _loss_kind(obj.loss_fn), obj.weight_decay
            self._objective = obj
        elif isinstance(obj, nn.Module):  # the model, its data and the loss kind named beside it
            if data is None:
                raise checks.GifLiteError(
                    f"{type(self).__name__}(model, data) needs data; or pass an Objective: "
                    f"gl.{type(self).__name__}(gl.Objective(model, loss_fn, data, weight_decay))"
                )
            model, batches = obj, _batches(data)
            loss = "cross_entropy" if loss is None else loss
            weight_decay = 0.0 if weight_decay is None else weight_decay
        else:
            raise checks.GifLiteTypeError(
                f"obj must be a gif_lite.Objective (or a torch.nn.Module with data), got {type(obj).__name__}"
            )
        if loss not in ("cross_entropy", "mse"):
            raise checks.GifLiteError(f"unknown loss {loss!r}; valid: 'cross_entropy', 'mse'")
        if fisher not in ("type-2", "mc", "empirical"):
            raise checks.GifLiteError(f"unknown fisher {fisher!r}; valid: 'type-2', 'mc', 'empirical'")
        if loss == "mse" and fisher == "mc":
            raise checks.GifLiteError(
                "fisher='mc' samples labels from a softmax, so it needs loss='cross_entropy'"
            )
        self.weight_decay = _check_damping(weight_decay, "weight_decay")
        checks.check_modes(
            model, what=type(self).__name__
        )  # its passes must not rewrite BatchNorm statistics
        self.model, self.loss, self.fisher = model, cast(LossKind, loss), fisher
        params = trainable_parameters(model)
        if not params:
            raise checks.GifLiteError("model has no trainable parameters (all have requires_grad=False)")
        offsets = flat_offsets(model)
        self.num_params = sum(p.numel() for p in params)
        self.dtype, self.device = params[0].dtype, params[0].device
        self.layers = self._find_layers(model, offsets)
        self.batches = list(batches)
        self.num_examples = 0
        self._gen = torch.Generator(device="cpu").manual_seed(checks.check_seed(seed))
        self._fit()
        if self._objective is None:
            # built from a model: the Objective it stands for, built when first needed
            loss_fn = F.cross_entropy if self.loss == "cross_entropy" else F.mse_loss
            self._objective = lambda: Objective(model, loss_fn, self.batches, self.weight_decay)

    # -------------------------------------------------------------- set-up
    @staticmethod
    def _find_layers(model: nn.Module, offsets: dict[int, int]) -> list[_Layer]:
        layers, covered = [], set()
        for name, m in weight_layers(model):
            if isinstance(m, nn.Conv2d) and (
                m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str)
            ):
                raise checks.GifLiteError(
                    f"layer {name!r}: K-FAC here supports Conv2d with groups=1 and numeric zero padding"
                )
            if m.bias is not None and id(m.bias) not in offsets:
                raise checks.GifLiteError(
                    f"layer {name!r}: its weight is trainable but its bias is frozen; freeze both or neither"
                )
            if id(m.weight) in covered or (m.bias is not None and id(m.bias) in covered):
                raise checks.GifLiteError(
                    f"layer {name!r} shares a parameter with another layer: K-FAC's blocks would overlap and "
                    "the operator would not be symmetric. For tied weights use the exact Objective or LowRank"
                )
            layers.append(_Layer(name, m, offsets))
            covered |= {id(m.weight), id(m.bias)}
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
        if missing:
            raise checks.GifLiteError(
                f"K-FAC covers only Linear and Conv2d layers, but these trainable parameters are elsewhere: "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. Freeze them with requires_grad_(False)"
            )
        return layers

    def _pseudo_grads(self, logits: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Vectors ``s`` (n, C) whose outer products sum to (an estimate of) the loss Hessian in the logits."""
        n, c = logits.shape
        if self.loss == "mse":
            if self.fisher == "empirical":
                return [(2.0 / c) * (logits - y.reshape(n, c).to(logits.dtype))]
            return [
                math.sqrt(2.0 / c) * torch.eye(c, dtype=logits.dtype, device=logits.device)[k].expand(n, c)
                for k in range(c)
            ]
        p = torch.softmax(logits, dim=1)
        if self.fisher == "type-2":
            eye = torch.eye(c, dtype=p.dtype, device=p.device)
            return [p[:, k : k + 1].sqrt() * (p - eye[k]) for k in range(c)]
        if self.fisher == "mc":
            labels = torch.multinomial(p.detach().cpu(), 1, generator=self._gen).squeeze(1).to(p.device)
        else:
            labels = y.to(p.device)
        return [p - F.one_hot(labels, c).to(p.dtype)]

    def _passes(self) -> Iterable[tuple[int, list[torch.Tensor], list[list[torch.Tensor]]]]:
        """Per batch: its size, each layer's input patches and, per pseudo-gradient, its output gradients."""
        handles = []
        for layer in self.layers:

            def hook(
                mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor, layer: _Layer = layer
            ) -> None:
                if layer.output is not None:
                    raise checks.GifLiteError(
                        f"layer {layer.name!r} is called more than once per forward; K-FAC needs one call"
                    )
                layer.inputs, layer.output = inp[0].detach(), out

            handles.append(layer.module.register_forward_hook(hook))
        try:
            for x, y in self.batches:
                x = x.to(self.device, self.dtype)
                for layer in self.layers:
                    layer.output = None
                with torch.enable_grad():
                    logits = self.model(x)
                    if logits.dim() != 2:
                        raise checks.GifLiteError(
                            f"the model must return (n, C) outputs, got shape {tuple(logits.shape)}"
                        )
                    outs = [layer.output for layer in self.layers]
                    if any(o is None for o in outs):
                        raise checks.GifLiteError(
                            "a Linear/Conv2d layer with trainable parameters was not called in forward"
                        )
                    grads = []
                    for s in self._pseudo_grads(logits.detach(), y):
                        gs = torch.autograd.grad(logits, outs, grad_outputs=s, retain_graph=True)  # type: ignore[arg-type]
                        grads.append([layer.out_grads(g.detach()) for layer, g in zip(self.layers, gs)])
                patches = [layer.patches(layer.inputs) for layer in self.layers]  # type: ignore[arg-type]
                yield x.shape[0], patches, [list(col) for col in zip(*grads)]
        finally:
            for h in handles:
                h.remove()
            for layer in self.layers:
                layer.inputs = layer.output = None

    def _fit(self) -> None:
        for layer in self.layers:
            layer.a = torch.zeros(layer.in_dim, layer.in_dim, dtype=self.dtype, device=self.device)
            layer.s = torch.zeros(layer.out_dim, layer.out_dim, dtype=self.dtype, device=self.device)
        n = 0
        for size, patches, grads in self._passes():
            n += size
            for layer, a, gs in zip(self.layers, patches, grads):
                a2 = a.reshape(-1, a.shape[-1])
                layer.a += a2.T @ a2 / a.shape[1]
                for g in gs:
                    g2 = g.reshape(-1, g.shape[-1])
                    layer.s += g2.T @ g2
        if n == 0:
            raise checks.GifLiteError("data is empty: K-FAC needs at least one example")
        self.num_examples = n
        for layer in self.layers:
            layer.a /= n
            layer.s /= n
            l_a, layer.q_a = torch.linalg.eigh(layer.a)
            l_s, layer.q_s = torch.linalg.eigh(layer.s)
            layer.d = torch.outer(l_s, l_a).clamp_min(0.0)  # (out, in): the eigenvalues of S (x) A
        if self.corrected:
            self._correct()

    def _correct(self) -> None:
        """EK-FAC: replace ``d`` by the exact diagonal ``(1/n) sum_{i,c} (Q_S^T G_ic Q_A)^2`` of each block."""
        for layer in self.layers:
            layer.d = torch.zeros_like(layer.d)
        for _, patches, grads in self._passes():
            for layer, a, gs in zip(self.layers, patches, grads):
                a_rot = a @ layer.q_a  # (n, T, in)
                for g in gs:
                    g_rot = g @ layer.q_s  # (n, T, out)
                    per_example = g_rot.transpose(1, 2) @ a_rot  # (n, out, in): Q_S^T (sum_t g_t a_t^T) Q_A
                    layer.d += (per_example**2).sum(0)
        for layer in self.layers:
            layer.d /= self.num_examples

    # -------------------------------------------------------------- products
    def _spectral(self, vs: torch.Tensor, fn: str, damping: float = 0.0) -> torch.Tensor:
        out = torch.zeros_like(vs)
        for layer in self.layers:
            w = layer.q_s.T @ layer.block(vs) @ layer.q_a  # (k, out, in) in the Kronecker eigenbasis
            d = layer.d + self.weight_decay + damping
            w = w * (d if fn == "mul" else _pinv_diag(d))
            layer.scatter(out, layer.q_s @ w @ layer.q_a.T)
        return out

    def _apply(self, vs: torch.Tensor) -> torch.Tensor:
        return self._spectral(vs, "mul")

    def inverse_hvp(self, v: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
        """``pinv(C + damping I) v``, exact: each block is inverted in its Kronecker eigenbasis.

        ``v`` is one vector or a ``(k, num_params)`` batch of rows (e.g. many test gradients at once).
        """
        rows = _rows(v, self.num_params)
        damping = _check_damping(damping)
        out = self._spectral(rows.detach().to(self.device, self.dtype), "inv", damping)
        return out if v.dim() == 2 else out[0]

    def factors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{layer name: (A, S)}``, the Kronecker factors (``A`` with the bias row/column last)."""
        return {layer.name: (layer.a, layer.s) for layer in self.layers}

    def eigenvalues(self) -> dict[str, torch.Tensor]:
        """``{layer name: d}`` (out_dim x in_dim): the block's eigenvalues in the Kronecker eigenbasis."""
        return {layer.name: layer.d for layer in self.layers}


class EKFAC(KFAC):
    """EK-FAC (George et al. 2018): K-FAC's eigenbasis with the exact diagonal of each GGN block in it.

    ``d_k = (1/n) sum_{i,c} (q_k^T vec(G_ic))^2`` with ``G_ic = sum_t g_ict a_it^T`` the per-example
    (pseudo-)gradient of the layer's weight and ``q_k`` the columns of ``Q_S (x) Q_A``: among operators with
    the eigenvectors ``Q``, the one closest to the GGN block in Frobenius norm.  One extra pass over ``data``.
    """

    corrected = True


# ------------------------------------------------------------------------------------ low rank
def _lanczos_basis(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    steps: int,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Lanczos steps (:func:`gif_lite.spectrum.lanczos_steps`, restarting on an invariant
    subspace): ``(Q, T)`` with ``Q^T A Q = T`` (Q is n x steps), ``T`` in ``dtype``."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=gen, dtype=dtype).to(device)
    q /= q.norm()
    basis, alphas, betas = lanczos_steps(matvec, q, steps, restart=gen)
    t = torch.diag(torch.tensor(alphas, dtype=dtype))
    if betas:
        b = torch.tensor(betas, dtype=dtype)
        t += torch.diag(b, 1) + torch.diag(b, -1)
    return basis.T, t.to(device)


class LowRank(CurvatureOperator):
    """Arnoldi / low-rank curvature (Schioppa et al. 2022): ``C = U diag(lambda) U^T``.

    ``steps`` Lanczos iterations (Arnoldi on a symmetric operator, fully reorthogonalised) on the exact
    ``obj.hvp`` give ``Q^T H Q = T``; the ``rank`` Ritz pairs of largest ``|lambda|`` (``U = Q V``) are kept.
    Costs ``steps`` HVPs once; every product afterwards is two thin matrix products.  With
    ``steps = rank = num_params`` it is ``H`` itself.  Products with ``pinv(C + damping I)``:
    ``U diag(1 / (lambda + damping)) U^T v`` plus ``(v - U U^T v) / damping`` when ``damping > 0``
    (the exact inverse of the damped low-rank matrix; Schioppa et al. keep only the first term).
    """

    def __init__(self, obj: Objective, rank: int, steps: int | None = None, seed: int = 0) -> None:
        obj = cast(Objective, as_operator(obj))  # the exact Objective, or any operator to compress further
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= obj.num_params:
            raise checks.GifLiteError(
                f"rank must be an int in [1, num_params={obj.num_params}], got {rank!r}"
            )
        steps = steps if steps is not None else min(obj.num_params, 2 * rank)
        if isinstance(steps, bool) or not isinstance(steps, int) or not rank <= steps <= obj.num_params:
            raise checks.GifLiteError(
                f"steps must be an int in [rank={rank}, num_params={obj.num_params}], got {steps!r}"
            )
        self.num_params, self.dtype, self.device = obj.num_params, obj.dtype, obj.device
        self.num_examples = obj.num_examples
        self._objective = obj.objective
        start = obj.hvp_calls
        seed = checks.check_seed(seed)
        q, t = _lanczos_basis(obj.hvp, obj.num_params, steps, seed, obj.dtype, obj.device)
        theta, s = torch.linalg.eigh(t)
        keep = theta.abs().argsort(descending=True)[:rank]
        self.eigenvalues, self.eigenvectors = theta[keep], q @ s[:, keep]
        self.build_hvps = obj.hvp_calls - start  #: exact HVPs spent building the operator

    def _apply(self, vs: torch.Tensor) -> torch.Tensor:
        return (vs @ self.eigenvectors) * self.eigenvalues @ self.eigenvectors.T

    def inverse_hvp(self, v: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
        """``pinv(U diag(lambda) U^T + damping I) v`` for one vector or a ``(k, num_params)`` batch of rows."""
        rows = _rows(v, self.num_params).detach().to(self.device, self.dtype)
        damping = _check_damping(damping)
        u = self.eigenvectors
        coef = rows @ u
        out = (coef * _pinv_diag(self.eigenvalues + damping)) @ u.T
        if damping > 0:
            out += (rows - coef @ u.T) / damping
        return out if v.dim() == 2 else out[0]


# ------------------------------------------------------------------------------------ stochastic
class StochasticHessian(CurvatureOperator):
    """Mini-batch Hessians of the objective ``mean loss + weight_decay/2 ||theta||^2`` of ``obj``.

    ``resample="per_call"``: every ``hvp`` draws ``batch_size`` examples uniformly without replacement
    (a fresh draw per call, from a generator seeded by ``seed``) and returns that batch's mean-loss
    Hessian times ``v`` plus ``weight_decay * v``: an unbiased estimate of ``H v``, for LiSSA (Agarwal
    et al. 2017), whose recursion averages the noise.  ``resample="fixed"``: one draw at construction,
    the same batch for every product (a subsampled Hessian, deterministic), for the Krylov solvers
    (CG, MINRES, LSQR) which assume one fixed matrix.

    Built from an Objective, ``StochasticHessian(obj, batch_size, resample, seed)`` (its batches are
    joined into one pool), or from its parts, ``StochasticHessian(model, loss_fn, (x, y), batch_size,
    weight_decay, resample, seed)``.
    """

    def __init__(self, obj: Objective | nn.Module, *args: Any, **kwargs: Any) -> None:
        if isinstance(obj, Objective):
            self._from_objective(obj, *args, **kwargs)
        else:
            self._from_parts(obj, *args, **kwargs)
            self._objective = lambda: Objective(self.model, self.loss_fn, self.data, self.weight_decay)

    def _from_objective(
        self,
        obj: Objective,
        batch_size: int,
        resample: Literal["per_call", "fixed"] = "per_call",
        seed: int = 0,
    ) -> None:
        pool = _pool(checks.in_example_order(obj.batches))  # a shuffled loader: the same draws
        self._from_parts(obj.model, obj.loss_fn, pool, batch_size, obj.weight_decay, resample, seed)
        self._objective = obj

    def _from_parts(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Data,
        batch_size: int,
        weight_decay: float = 0.0,
        resample: Literal["per_call", "fixed"] = "per_call",
        seed: int = 0,
    ) -> None:
        if not (
            isinstance(data, (tuple, list))
            and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            raise checks.GifLiteTypeError("data must be one (inputs, targets) pair of tensors")
        n = int(data[0].shape[0])
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n:
            raise checks.GifLiteError(f"batch_size must be an int in [1, n={n}], got {batch_size!r}")
        if resample not in ("per_call", "fixed"):
            raise checks.GifLiteError(f"unknown resample {resample!r}; valid: 'per_call', 'fixed'")
        self.model, self.loss_fn, self.data = model, loss_fn, (data[0], data[1])
        self.batch_size, self.weight_decay, self.resample = int(batch_size), weight_decay, resample
        self._gen = torch.Generator().manual_seed(checks.check_seed(seed))
        self._obj = self._draw()  # validates model, loss_fn and weight_decay as Objective does
        self.num_params, self.dtype, self.device = self._obj.num_params, self._obj.dtype, self._obj.device
        self.num_examples = n

    def check_fixed(self, what: str) -> None:
        """Refuse ``resample="per_call"`` where one fixed matrix is needed (``what`` names the user)."""
        if self.resample == "per_call":
            raise checks.GifLiteError(
                f"{what} needs one fixed matrix, but this StochasticHessian draws a new batch for every "
                "product; build it with resample='fixed', or solve with solver='lissa' (made for fresh batches)"
            )

    def hessian_columns(self, columns: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        self.check_fixed("a dense curvature block")
        return super().hessian_columns(columns, chunk)

    def state_cache(self) -> dict[Any, Any]:
        """Per call a fresh dict when every product draws a new batch (no answer outlives its draw)."""
        return {} if self.resample == "per_call" else super().state_cache()

    def _draw(self) -> Objective:
        idx = torch.randperm(int(self.data[0].shape[0]), generator=self._gen)[: self.batch_size]
        x, y = self.data
        batch = (x[idx.to(x.device)], y[idx.to(y.device)])
        return Objective(self.model, self.loss_fn, batch, self.weight_decay, hvp_method="double_backward")

    def _apply(self, vs: torch.Tensor) -> torch.Tensor:
        if self.resample == "fixed" and vs.shape[0] > 1:  # one batch: its batched HVPs, one pass per block
            return self._obj.hvp_batch(vs)
        rows = []
        for v in vs:
            if self.resample == "per_call":
                self._obj = self._draw()
            rows.append(self._obj.hvp(v))
        return torch.stack(rows)


def _pool(batches: Iterable[Data]) -> Data:
    """The batches of an Objective as one ``(inputs, targets)`` pair (the pool a mini-batch is drawn from)."""
    pairs = list(batches)
    if len(pairs) == 1:
        return pairs[0][0], pairs[0][1]
    return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])


# ------------------------------------------------------------------------------------ dense
class DenseOperator(CurvatureOperator):
    """A given dense symmetric matrix ``H`` (``num_params x num_params``) as a curvature operator: a
    Gauss-Newton matrix built elsewhere, an exact Hessian kept from an earlier run, a test's oracle.

    ``objective`` (optional) is the :class:`~gif_lite.Objective` that ``H`` stands for; attribution needs it
    for the per-example gradients.  ``H`` must be symmetric to rounding (``||H - H^T|| <= 1e-6 ||H||``).
    """

    def __init__(self, hessian: torch.Tensor, objective: Objective | None = None) -> None:
        if (
            not isinstance(hessian, torch.Tensor)
            or hessian.dim() != 2
            or hessian.shape[0] != hessian.shape[1]
        ):
            got = (
                f"shape {tuple(hessian.shape)}"
                if isinstance(hessian, torch.Tensor)
                else type(hessian).__name__
            )
            raise checks.GifLiteTypeError(f"hessian must be a square 2-D tensor, got {got}")
        if not hessian.is_floating_point() or not torch.isfinite(hessian).all():
            raise checks.GifLiteError("hessian must be a finite floating tensor")
        asym = float((hessian - hessian.T).norm()) / max(float(hessian.norm()), 1e-300)
        if asym > 1e-6:
            raise checks.GifLiteError(
                f"hessian is not symmetric (||H - H^T|| / ||H|| = {asym:.1e}); a curvature matrix must be"
            )
        if objective is not None:
            if not isinstance(objective, Objective):
                raise checks.GifLiteTypeError(
                    f"objective must be a gif_lite.Objective or None, got {type(objective).__name__}"
                )
            if objective.num_params != hessian.shape[0]:
                raise checks.GifLiteError(
                    f"hessian is {hessian.shape[0]} x {hessian.shape[0]} but the objective has "
                    f"{objective.num_params} parameters"
                )
            self.num_examples = objective.num_examples
        self._objective = objective
        self.matrix = hessian.detach()
        self.num_params = int(hessian.shape[0])
        self.dtype, self.device = hessian.dtype, hessian.device
        self.max_dense_params = max(DEFAULT_MAX_DENSE_PARAMS, self.num_params)

    def _apply(self, vs: torch.Tensor) -> torch.Tensor:
        return vs @ self.matrix
