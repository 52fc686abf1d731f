"""Attribution: which training examples explain a prediction (chapter ``book/attribution``).

Removing training example ``i`` (of ``n``) from a model trained to the optimum of the objective moves
the parameters, to first order, by ``delta_i = A^-1 g_i`` with the removal right-hand side for
``m = 1`` (see :mod:`gif_lite.tasks`)

    ``g_i = (grad l_i(theta) + weight_decay * theta) / (n - 1)``,

``H`` the full-data Hessian and ``A = H + damping * I``.  The predicted change of test example ``j``'s
loss is ``S[j, i] = grad l_test_j . delta_i`` (positive: removing ``i`` would *raise* the test loss, so
``i`` helped).  Restricted to a parameter subset ``P`` (estimators of :mod:`gif_lite.influence`):

* IF   ``S[j, i] = t_j . A^-1 g_i``                      with ``t_j = grad l_test_j``
* FIF  ``S[j, i] = t_j[P] . A[P,P]^-1 g_i[P]``
* PIF  ``S[j, i] = t_j[P] . (A^-1 g_i)[P]``
* GIF  ``S[j, i] = t_j[P] . pinv(A[:,P]) g_i``

Every row is one linear solve on the *test* side, ``S[j, :] = y_j . G`` with ``y_j`` (length
``num_params``) equal to ``A^-1 t_j`` (IF), ``A^-1 t_j[P]`` embedded (PIF), ``A[P,P]^-1 t_j[P]``
embedded (FIF) and ``pinv(A[:,P])^T t_j[P] = pinv(A[P,:]) t_j[P]`` (GIF: the minimum-norm solution of
``A[P,:] y = t_j[P]``), so ``n_test`` solves serve all ``n_train`` columns.  The solves run together:
``"direct"`` factorises the dense Hessian once per parameter value (cached on the objective, reused by
every later call), ``"cg"`` is :func:`~gif_lite.solvers.block_cg`, ``"minres"``
:func:`~gif_lite.solvers.batched_minres` and ``"lsqr"`` :func:`~gif_lite.solvers.batched_lsqr`, all
on :meth:`Objective.hvp_batch`.  Per-example gradients come from ``torch.func`` (``vmap`` of ``grad``
of ``functional_call``) in chunks whose size keeps them within a memory budget.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, cast

import torch

from . import checks
from . import solvers as S
from .curvature import HessianOperator, as_operator
from .influence import ESTIMATOR_SPECS, DampedSystem, EstimatorSpec, SolveOptions
from .objective import Data, Objective
from .params import check_subset
from .progress import progress_bar

__all__ = [
    "ATTRIBUTION_ESTIMATORS",
    "DENSE_AUTO_LIMIT",
    "GRADIENT_MEMORY_BUDGET",
    "clear_cache",
    "example_gradients",
    "removal_effects",
    "self_influence",
]

ATTRIBUTION_ESTIMATORS = tuple(ESTIMATOR_SPECS)
#: ``solver="auto"`` factorises the dense Hessian when the (sub)system has at most this many unknowns.
DENSE_AUTO_LIMIT = 5_000
#: Bytes one chunk of per-example gradients may take when ``batch_size`` is not given (256 MiB).
GRADIENT_MEMORY_BUDGET = 256 * 2**20


# ------------------------------------------------------------------------------------ per-example gradients
def _chunk_size(batch_size: int | None, num_params: int, dtype: torch.dtype) -> int:
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise checks.GifLiteError(
                f"batch_size must be a positive integer (examples per chunk), got {batch_size!r}"
            )
        return batch_size
    per_example = 3 * num_params * torch.finfo(dtype).bits // 8  # the gradients and vmap's intermediates
    return max(1, min(4096, GRADIENT_MEMORY_BUDGET // per_example))


def _check_data(data: Any, name: str) -> Data:
    """Any data form the objective takes (a pair of tensors or numpy arrays, a ``TensorDataset``, a list
    of batches, a ``DataLoader``), as one pair in example order (:func:`gif_lite.checks.check_example_pair`)."""
    return checks.check_example_pair(data, name)


def _failed(obj: Objective, x: torch.Tensor, y: torch.Tensor, name: str, err: Exception) -> Exception:
    """The error to raise when the per-example gradients of ``(x, y)`` failed inside torch: the inputs'
    shape (:func:`gif_lite.checks.run_forward`) or class labels out of range, else the loss named."""
    with torch.no_grad(), checks.atomic(obj.model):
        out = checks.run_forward(obj.model, x[:1], name)  # raises ModelCallError on a shape mismatch
    if not y.is_floating_point() and out.dim() == 2:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= out.shape[1]:
            return checks.GifLiteError(
                f"{name}'s targets must be class labels in [0, {out.shape[1]}) (the model's outputs), got "
                f"range [{low}, {high}]"
            )
    return checks.GifLiteError(
        f"loss_fn failed on {name}'s examples one at a time ({err}); check its targets"
    )


def example_gradients(
    obj: Objective,
    data: Data | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    *,
    name: str = "data",
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, G)`` chunks of per-example loss gradients: row ``r`` of ``G`` is ``grad l(theta)`` of example
    ``start + r`` of ``data`` (default: the objective's own training data), no weight-decay term.

    ``l`` is ``obj.loss_fn`` on a batch of one, so its mean over a batch is the objective's data loss.
    Computed with ``torch.func.vmap`` over ``grad`` of ``functional_call``; a chunk holds ``batch_size``
    examples (default: as many as fit in :data:`GRADIENT_MEMORY_BUDGET`), so memory stays bounded.
    """
    from torch.func import functional_call, grad, vmap

    if not isinstance(obj, Objective):
        raise checks.GifLiteTypeError(
            f"obj must be a gif_lite.Objective (the model, loss and data), got {type(obj).__name__}"
        )
    model = obj.model
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach() for n, p in zip(names, obj.params, strict=True)}
    chunk = _chunk_size(batch_size, obj.num_params, obj.dtype)

    def one(ps: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return obj.loss_fn(functional_call(model, ps, (x.unsqueeze(0),)), y.unsqueeze(0))

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    # the objective's own data in example order (a shuffled DataLoader would scramble the columns)
    name = name if data is not None else "the objective's data"
    batches = [_check_data(data, name)] if data is not None else list(checks.in_example_order(obj.batches))
    total = sum(int(x.shape[0]) for x, _ in batches)
    start = 0
    with progress_bar(total, "gradients", progress) as bar:
        for x, y in batches:
            for lo in range(0, x.shape[0], chunk):
                xb = x[lo : lo + chunk].to(obj.device)
                yb = y[lo : lo + chunk].to(obj.device)
                xb = xb.to(obj.dtype) if xb.is_floating_point() else xb
                yb = yb.to(obj.dtype) if yb.is_floating_point() else yb
                try:
                    g = per_example(params, xb, yb)
                except (RuntimeError, IndexError) as e:
                    raise _failed(obj, xb, yb, name, e) from e
                flat = torch.cat([g[n].reshape(xb.shape[0], -1) for n in names], dim=1).detach()
                if not torch.isfinite(flat).all():
                    raise FloatingPointError(
                        "a per-example gradient is not finite; check the data and the model"
                    )
                yield start, flat
                start += xb.shape[0]
                bar.update(xb.shape[0])


# ------------------------------------------------------------------------------------ dense factors, cached
_SEEN: weakref.WeakSet[Any] = weakref.WeakSet()  # for clear_cache() of every objective


def _factors(op: HessianOperator) -> dict[tuple[Any, ...], Any]:
    """Factorisations of the dense curvature of ``op``, kept in its ``state_cache()``, so they are dropped
    exactly when the curvature is (for an Objective: any parameter or buffer change, or ``release``)."""
    if isinstance(op, Objective):
        _SEEN.add(op)
    return op.state_cache().setdefault("attribution factors", {})


def clear_cache(obj: Objective | None = None) -> None:
    """Forget the cached factorisations and dense Hessians (:meth:`Objective.release`) of ``obj``, or
    of every objective attribution has seen."""
    for o in list(_SEEN) if obj is None else [obj]:
        o.release()


def _symmetric_factor(a: torch.Tensor) -> tuple[str, tuple[torch.Tensor, ...]]:
    """Cholesky when ``a`` is positive definite, else LU with partial pivoting (symmetric indefinite)."""
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return "cholesky", (chol,)
    lu, pivots, info = torch.linalg.lu_factor_ex(a)
    if int(info) != 0:
        raise checks.GifLiteError(
            "the Hessian is singular, so removal effects are not defined; pass damping > 0, or use "
            "estimator='GIF' (least squares)"
        )
    return "lu", (lu, pivots)


def _factor_solve(kind: str, parts: tuple[torch.Tensor, ...], b: torch.Tensor) -> torch.Tensor:
    if kind == "cholesky":
        return torch.cholesky_solve(b, parts[0])
    return torch.linalg.lu_solve(parts[0], parts[1], b)


def _key(system: DampedSystem, kind: str) -> tuple[Any, ...]:
    p = system.p if system.spec.system != "full" else None
    return (kind, system.damping, None if p is None else tuple(p.tolist()))


def _dense_square(system: DampedSystem, b: torch.Tensor) -> torch.Tensor:
    """``A^-1 B`` for the square system (``A`` or ``A[P,P]``), factorised once and cached."""
    store = _factors(system.op)
    key = _key(system, "square")
    if key not in store:
        a = system.dense_square()
        store[key] = (*_symmetric_factor(a), a)
    kind, parts, a = store[key][0], store[key][1], store[key][2]
    x = _factor_solve(kind, parts, b)
    _check_dense(a, x, b)
    return x


def _check_dense(a: torch.Tensor, x: torch.Tensor, b: torch.Tensor) -> None:
    res = float(((b - a @ x).norm(dim=0) / S._column_scale(b)).max())
    if not math.isfinite(res):
        raise FloatingPointError("the dense solve produced non-finite values; add damping")
    limit = 1e-6 if a.dtype == torch.float64 else 1e-2
    if res > limit:
        import warnings

        warnings.warn(
            f"the dense solve left a relative residual of {res:.1e}: the Hessian is nearly singular; "
            "add damping for a stable answer",
            S.ConvergenceWarning,
            stacklevel=4,
        )


def _dense_gif(system: DampedSystem, t_p: torch.Tensor) -> torch.Tensor:
    """``pinv(A[:,P])^T T_P``, from one cached SVD of ``A[:,P]``."""
    store = _factors(system.op)
    key = _key(system, "gif")
    if key not in store:
        a = system.dense_columns()
        u, sv, vh = torch.linalg.svd(a, full_matrices=False)
        cut = sv.max() * max(a.shape) * torch.finfo(a.dtype).eps
        inv = torch.where(
            sv > cut, 1.0 / torch.where(sv > cut, sv, torch.ones_like(sv)), torch.zeros_like(sv)
        )
        store[key] = (u, inv, vh)
    u, inv, vh = store[key]
    return u @ (inv[:, None] * (vh @ t_p))  # (U diag(1/s) V^T) t = pinv(A)^T t


# ------------------------------------------------------------------------------------ the test-side solve
def _solve_columns(
    op: HessianOperator,
    t: torch.Tensor,
    spec: EstimatorSpec,
    p: torch.Tensor | None,
    opts: SolveOptions,
) -> torch.Tensor:
    """``Y`` (num_params x s) with ``S = Y^T G``: the test-side solve of the estimator's system (its
    :class:`~gif_lite.influence.EstimatorSpec`, as the single-vector estimators solve it) for the columns
    of ``t``: the transpose of the estimator's map from ``g`` to the readout.

    IF solves ``A y = t``; PIF ``A y = t`` masked to ``P`` (the transpose of slicing); FIF
    ``A[P,P] y_P = t[P]``; GIF the minimum-norm ``y`` with ``A[P,:] y = t[P]`` (the transpose of
    ``pinv(A[:,P])``).
    """
    system = DampedSystem(op, spec, p, opts.damping)
    solver, tol, max_iter = opts.solver, cast(float, opts.tol), opts.max_iter
    if spec.system == "columns":
        t_p = t[p]
        if solver == "direct":
            return _dense_gif(system, t_p)
        return S.batched_lsqr(system.rows_p, system.on_p, t_p, tol=tol, max_iter=max_iter).x
    b = system.embed(t[p]) if spec.readout else system.rhs(t)
    if solver == "direct":
        inverse = getattr(op, "inverse_hvp", None)
        if spec.system == "full" and inverse is not None:  # K-FAC, EK-FAC, low rank: exact and cheap
            y = inverse(b.T, opts.damping).T
        else:
            y = _dense_square(system, b)
    else:
        fn = S.block_cg if solver == "cg" else S.batched_minres
        y = fn(system.square, b, tol=tol, max_iter=max_iter).x
    return system.embed(y) if spec.system == "block" else y


# ------------------------------------------------------------------------------------ public API
def _setup(
    obj: HessianOperator,
    subset: torch.Tensor | Sequence[int] | None,
    estimator: str,
    solver: str,
    damping: float,
    tol: float | None,
    max_iter: int | None,
) -> tuple[HessianOperator, Objective, EstimatorSpec, torch.Tensor | None, SolveOptions]:
    """Every input checked: the operator, the Objective behind it, the spec, ``P`` and the solve options."""
    op = as_operator(obj)
    spec = ESTIMATOR_SPECS.get(estimator) if isinstance(estimator, str) else None
    if spec is None:
        raise checks.GifLiteError(
            f"unknown estimator {estimator!r}; valid: {', '.join(ATTRIBUTION_ESTIMATORS)}"
        )
    if not spec.needs_subset and subset is not None:
        raise checks.GifLiteError(
            "estimator='IF' moves every parameter: drop subset, or pick estimator 'FIF', 'PIF' or 'GIF'"
        )
    if spec.needs_subset and subset is None:
        raise checks.GifLiteError(
            f"estimator={estimator!r} needs a subset P of parameter indices (e.g. from gif_lite.select)"
        )
    if not isinstance(solver, str) or solver not in spec.batched_solvers:
        raise checks.GifLiteError(
            f"unknown solver {solver!r} for estimator {estimator!r}; valid: {', '.join(spec.batched_solvers)}"
        )
    opts = SolveOptions(solver, damping, tol, max_iter).checked(spec.batched_solvers, "auto")
    if hasattr(op, "check_fixed"):  # a resampling operator is a new matrix per product
        op.check_fixed("removal_effects / self_influence")
    base = op.objective
    if base.num_examples < 2:
        raise checks.GifLiteError("removal effects need at least 2 training examples (g_i divides by n - 1)")
    p = None if subset is None else check_subset(subset, op.num_params).to(op.device)
    if opts.solver == "auto":
        size = op.num_params if spec.system != "block" else int(p.numel()) if p is not None else 0
        exact_inverse = spec.system == "full" and hasattr(op, "inverse_hvp")
        if exact_inverse or size <= DENSE_AUTO_LIMIT:
            solver = "direct"
        else:
            solver = spec.default_solver
        opts = SolveOptions(solver, opts.damping, opts.tol, opts.max_iter)
    if opts.solver == "direct" and op.dtype not in S._FACTOR_DTYPES:
        raise checks.GifLiteError(S._factor_dtype_message(op.dtype))
    return op, base, spec, p, SolveOptions(opts.solver, opts.damping, opts.tolerance(op.dtype), opts.max_iter)


def _removal_rhs(obj: Objective, grads: torch.Tensor) -> torch.Tensor:
    """``g_i = (grad l_i + weight_decay * theta) / (n - 1)`` for each row of ``grads``."""
    return (grads + obj.weight_decay * obj.theta()) / (obj.num_examples - 1)


def removal_effects(
    obj: HessianOperator,
    test: Data,
    subset: torch.Tensor | Sequence[int] | None = None,
    estimator: str = "IF",
    solver: str = "auto",
    batch_size: int | None = None,
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """``S`` (``n_test x n_train``): ``S[j, i]`` is the predicted change of test example ``j``'s loss when
    training example ``i`` is removed, ``grad l_test_j . delta_i`` (see the module docstring).

    ``obj`` is the full-data objective at its optimum; ``test`` an ``(inputs, targets)`` pair.  ``estimator``
    is ``"IF"`` (no subset) or ``"FIF"``, ``"PIF"``, ``"GIF"`` with a parameter ``subset`` P.  ``solver``:
    ``"direct"`` (dense Hessian, factorised once per parameter value and cached on ``obj``), ``"cg"``
    (block CG, positive definite Hessians), ``"minres"`` (batched MINRES, any symmetric Hessian) or
    ``"lsqr"`` (GIF); ``"auto"`` is ``"direct"`` up to :data:`DENSE_AUTO_LIMIT` unknowns, else
    ``"minres"`` (``"lsqr"`` for GIF).  ``batch_size`` examples per chunk of per-example gradients
    (default: :data:`GRADIENT_MEMORY_BUDGET`).  Positive scores: the example helped the test prediction.
    """
    op, obj, spec, p, opts = _setup(obj, subset, estimator, solver, damping, tol, max_iter)
    test = _check_data(test, "test")
    t = torch.cat([g for _, g in example_gradients(obj, test, batch_size, progress, name="test")])
    y = _solve_columns(op, t.T.contiguous(), spec, p, opts)  # k x n_test
    out = torch.empty(t.shape[0], obj.num_examples, dtype=obj.dtype, device=obj.device)
    for start, grads in example_gradients(obj, None, batch_size, progress):
        out[:, start : start + grads.shape[0]] = (_removal_rhs(obj, grads) @ y).T
    return out


def self_influence(
    obj: HessianOperator,
    subset: torch.Tensor | Sequence[int] | None = None,
    estimator: str = "IF",
    solver: str = "auto",
    batch_size: int | None = None,
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """``s`` (``n_train``): ``s[i] = grad l_i . delta_i``, the predicted rise of training example ``i``'s own
    loss when it is removed (the diagonal of :func:`removal_effects` with the training set as test set).

    Large values flag examples the model can only fit by bending around them: mislabelled, atypical or
    poisoned ones.  Arguments as in :func:`removal_effects`; the solves run one chunk of ``batch_size``
    training examples at a time (with ``"direct"`` the factorisation is shared by all chunks).
    """
    op, obj, spec, p, opts = _setup(obj, subset, estimator, solver, damping, tol, max_iter)
    out = torch.empty(obj.num_examples, dtype=obj.dtype, device=obj.device)
    for start, grads in example_gradients(obj, None, batch_size, progress):
        y = _solve_columns(op, grads.T.contiguous(), spec, p, opts)
        out[start : start + grads.shape[0]] = (_removal_rhs(obj, grads) * y.T).sum(1)
    return out
