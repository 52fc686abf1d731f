"""Influence estimators: IF, FIF, PIF, GIF and second-order group influence.

With ``H`` the Hessian of the objective plus ``damping * I``, ``g`` the task's target (see
:mod:`gif_lite.tasks`) and ``P`` the selected parameter subset (``F`` the fixed rest):

* IF   ``delta = H^-1 g``                                 (all parameters move)
* FIF  ``delta = H[P,P]^-1 g[P]``                         (frozen IF: pretend ``F`` does not exist)
* PIF  ``delta = (H^-1 g)[P]``                            (projected IF: full answer, sliced)
* GIF  ``delta = argmin_x ||H[:,P] x - g||_2 = pinv(H[:,P]) g``

GIF asks the update on ``P`` to reproduce the whole gradient change ``g``, including its part on the
fixed parameters, ``H[F,P] x ~ g[F]``, which FIF ignores and PIF only gets by accident.  With
``P`` = everything GIF is IF; when ``H[F,P] = 0`` it is FIF.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import torch

from . import checks
from . import solvers as S
from .curvature import HessianOperator, as_operator
from .objective import Objective
from .params import check_subset, embed
from .types import MatVec, Subset

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_SPECS",
    "DampedSystem",
    "EstimatorSpec",
    "Estimators",
    "InfluenceResult",
    "SolveOptions",
    "default_tol",
    "frozen_influence",
    "generalized_influence",
    "influence",
    "misfit",
    "project",
    "projected_influence",
    "second_order_influence",
    "second_order_relabel_influence",
]


@dataclass
class InfluenceResult:
    """An estimated parameter change and how it was computed.

    ``delta`` has one entry per index of ``subset`` (or per parameter when ``subset`` is None).
    ``residual`` is the solver's relative residual: ``||b - A x|| / ||b||`` for square systems and
    ``||A^T (b - A x)|| / ||A^T b||`` for GIF's least squares.  ``hvps`` counts Hessian-vector products.
    """

    delta: torch.Tensor
    iterations: int
    residual: float
    converged: bool
    solver: str
    hvps: int
    subset: torch.Tensor | None = None
    history: list[float] = field(default_factory=list)
    #: ``||A delta - b|| / ||b||`` of the solved system.  For GIF, ``||H[:,P] delta - g|| / ||g||``: the share
    #: of the gradient change that no update on ``P`` can cancel.  For IF/FIF/PIF it equals ``residual``.
    misfit: float = math.nan

    def full(self, num_params: int) -> torch.Tensor:
        """The update scattered into a vector of length ``num_params``."""
        return self.delta if self.subset is None else embed(self.delta, self.subset, num_params)


# ------------------------------------------------------------------------------------ the specification
@dataclass(frozen=True)
class EstimatorSpec:
    """Which system an estimator solves, and what it reads out: the one definition that the single-vector
    estimators here and the batched attribution of :mod:`gif_lite.attribution` both follow.

    With ``A = C + damping I`` (``C`` the curvature: the Hessian or an operator standing for it):
    ``system="full"`` solves ``A x = g``; ``"block"`` solves ``A[P,P] x = g[P]``; ``"columns"`` solves the
    least squares ``min ||A[:,P] x - g||``.  ``readout=True`` keeps ``x[P]`` of a full solve (PIF).
    ``solvers`` are those of the single-vector path, ``batched_solvers`` those of attribution.
    """

    name: str
    system: Literal["full", "block", "columns"]
    readout: bool
    solvers: tuple[str, ...]
    batched_solvers: tuple[str, ...]
    default_solver: str

    @property
    def needs_subset(self) -> bool:
        return self.system != "full" or self.readout


_BATCHED_SQUARE = ("auto", "direct", "cg", "minres")
#: IF, FIF, PIF and GIF, each specified once.
ESTIMATOR_SPECS: dict[str, EstimatorSpec] = {
    "IF": EstimatorSpec("IF", "full", False, S.SQUARE_SOLVERS, _BATCHED_SQUARE, "minres"),
    "FIF": EstimatorSpec("FIF", "block", False, S.SQUARE_SOLVERS, _BATCHED_SQUARE, "minres"),
    "PIF": EstimatorSpec("PIF", "full", True, S.SQUARE_SOLVERS, _BATCHED_SQUARE, "minres"),
    "GIF": EstimatorSpec(
        "GIF", "columns", False, S.LEAST_SQUARES_SOLVERS, ("auto", "direct", "lsqr"), "lsqr"
    ),
}


def default_tol(dtype: torch.dtype) -> float:
    """The one default tolerance: 1e-10 in float64 (tight enough for the 1e-6 oracle checks), 1e-5 otherwise."""
    return 1e-10 if dtype == torch.float64 else 1e-5


@dataclass(frozen=True)
class SolveOptions:
    """The options of one solve, checked once (see :func:`gif_lite.checks.check_solver_options`):
    ``solver`` (None: the estimator's default), ``damping`` (>= 0), ``tol`` (None: :func:`default_tol` of
    the dtype), ``max_iter`` (None: the solver's default) and the named solver's own keyword ``extra``."""

    solver: str | None = None
    damping: float = 0.0
    tol: float | None = None
    max_iter: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def checked(self, valid: tuple[str, ...], default: str) -> SolveOptions:
        """These options with the solver named and every value checked against ``valid`` solvers."""
        solver = default if self.solver is None else self.solver
        fn = getattr(S, solver, None) if isinstance(solver, str) else None
        tol, max_iter, damping = checks.check_solver_options(
            solver, valid, tol=self.tol, max_iter=self.max_iter, damping=self.damping, options=self.extra,
            solver_fn=fn if callable(fn) else None,
        )  # fmt: skip
        return SolveOptions(solver, damping, tol, max_iter, dict(self.extra))

    def tolerance(self, dtype: torch.dtype) -> float:
        return self.tol if self.tol is not None else default_tol(dtype)


class DampedSystem:
    """``A = C + damping I`` on a parameter subset ``P``, as an estimator's :class:`EstimatorSpec` sees it.

    Every product is a curvature product of ``op``: one vector at a time (``op.hvp``) or a block of
    columns at once (``op.matmat``), so the single-vector estimators and batched attribution run the
    same maps.  ``on_p(x) = A[:,P] x``, ``rows_p(y) = A[P,:] y``, ``square`` the square map of a full or
    block system, ``dense_square()`` / ``dense_columns()`` the dense matrices of ``solver="direct"``.
    """

    def __init__(
        self, op: HessianOperator, spec: EstimatorSpec, p: torch.Tensor | None, damping: float
    ) -> None:
        self.op, self.spec, self.p, self.damping = op, spec, p, damping
        self.k = op.num_params

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` for a vector, or for every column of a ``(num_params, s)`` block."""
        if v.dim() == 1:
            return self.op.hvp(v) + self.damping * v
        return self.op.matmat(v.T).T + self.damping * v

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (entries or rows on ``P``) scattered into zeros over all parameters."""
        assert self.p is not None
        if x.dim() == 1:
            return embed(x, self.p, self.k)
        out = torch.zeros(self.k, x.shape[1], dtype=x.dtype, device=x.device)
        out[self.p] = x
        return out

    def on_p(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(self.embed(x))

    def rows_p(self, y: torch.Tensor) -> torch.Tensor:
        return self.apply(y)[self.p]

    def square(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` (full system) or ``A[P,P] x`` (block system)."""
        return self.apply(x) if self.spec.system == "full" else self.rows_p(self.embed(x))

    def rhs(self, g: torch.Tensor) -> torch.Tensor:
        """The right-hand side of the spec's system for the target ``g``."""
        return g[self.p] if self.spec.system == "block" else g

    def dense_square(self) -> torch.Tensor:
        """``A`` or ``A[P,P]``, dense and symmetrised."""
        if self.spec.system == "full":
            a = self.op.hessian()
        else:
            assert self.p is not None
            a = self.op.hessian_columns(self.p)[self.p]
        return 0.5 * (a + a.T) + self.damping * torch.eye(a.shape[0], dtype=a.dtype, device=a.device)

    def dense_columns(self) -> torch.Tensor:
        """``A[:,P]``, dense."""
        assert self.p is not None
        a = self.op.hessian_columns(self.p).clone()
        a[self.p, torch.arange(self.p.numel(), device=self.p.device)] += self.damping
        return a


# ------------------------------------------------------------------------------------ checks
def _prepare(op: HessianOperator, g: torch.Tensor) -> torch.Tensor:
    """``g`` checked (see :mod:`gif_lite.checks`), detached, in the operator's dtype."""
    checks.check_vector(g, op.num_params, "g", device=op.device)
    return g.detach().to(op.dtype)


def _result(
    sol: S.SolveResult, solver: str, obj: HessianOperator, start: int, subset: torch.Tensor | None
) -> InfluenceResult:
    return InfluenceResult(
        delta=sol.x.detach(),
        iterations=sol.iterations,
        residual=sol.residual,
        converged=sol.converged,
        solver=solver,
        hvps=obj.hvp_calls - start,
        subset=subset,
        history=sol.history,
        misfit=sol.misfit,
    )


def _solve_square(
    matvec: MatVec,
    b: torch.Tensor,
    dense: Callable[[], torch.Tensor],
    solver: str,
    tol: float,
    max_iter: int | None,
    solver_kwargs: Mapping[str, Any],
) -> S.SolveResult:
    """Solve ``A x = b`` for symmetric ``A`` with the named solver."""
    if solver == "direct":
        return S.direct(dense(), b)
    if solver in ("cg", "minres"):
        return getattr(S, solver)(matvec, b, tol=tol, max_iter=max_iter, **solver_kwargs)
    if solver == "lissa":
        return S.lissa(matvec, b, tol=tol, max_iter=max_iter, **solver_kwargs)
    if solver == "landweber":
        return S.landweber(matvec, matvec, b, tol=tol, max_iter=max_iter or 200, **solver_kwargs)
    return S.lsqr(matvec, matvec, b, tol=tol, max_iter=max_iter, **solver_kwargs)


def _estimate(
    name: str, obj: HessianOperator, g: torch.Tensor, subset: Subset | None, options: SolveOptions
) -> InfluenceResult:
    """The estimator ``name`` (its :class:`EstimatorSpec`) for one target ``g``; every input checked first."""
    spec = ESTIMATOR_SPECS[name]
    op = as_operator(obj)
    opts = options.checked(spec.solvers, spec.default_solver)
    g = _prepare(op, g)
    p = checks.check_subset(subset, op.num_params, device=g.device) if spec.needs_subset else None
    solver, tol, kw = cast(str, opts.solver), opts.tolerance(g.dtype), opts.extra
    if solver != "lissa" and hasattr(op, "check_fixed"):  # a resampling operator is a new matrix per product
        op.check_fixed(f"solver={solver!r}")
    system = DampedSystem(op, spec, p, opts.damping)
    start = op.hvp_calls
    if spec.system == "columns":
        if solver == "direct":
            sol = S.direct(system.dense_columns(), g, least_squares=True)
        elif solver == "landweber":
            sol = S.landweber(system.on_p, system.rows_p, g, tol=tol, max_iter=opts.max_iter or 200, **kw)
        else:
            sol = S.lsqr(system.on_p, system.rows_p, g, tol=tol, max_iter=opts.max_iter, **kw)
    elif solver == "direct" and spec.system == "full" and hasattr(op, "inverse_hvp"):
        # a structured operator (K-FAC, low rank) inverts exactly
        x = op.inverse_hvp(g, opts.damping)
        r = float((g - op.hvp(x) - opts.damping * x).norm()) / max(float(g.norm()), 1e-300)
        sol = S.SolveResult(x, 1, r, r <= tol, [r], 1, misfit=r)
        if not sol.converged:  # a singular operator without damping: its pseudo-inverse is no solution
            sol = S.finish(
                "direct (the operator's inverse)", sol, tol, "The operator is singular: add damping."
            )
    else:
        sol = _solve_square(system.square, system.rhs(g), system.dense_square, solver, tol, opts.max_iter, kw)
    res = _result(sol, solver, op, start, None if spec.system == "full" else p)
    return project(res, cast(torch.Tensor, p)) if spec.readout else res


# ------------------------------------------------------------------------------------ estimators
def influence(
    obj: HessianOperator,
    g: torch.Tensor,
    solver: str = "minres",
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    **solver_kwargs: Any,
) -> InfluenceResult:
    """IF: ``delta = (H + damping I)^-1 g`` over all parameters (``H``: ``obj``, any curvature operator)."""
    return _estimate("IF", obj, g, None, SolveOptions(solver, damping, tol, max_iter, solver_kwargs))


def frozen_influence(
    obj: HessianOperator,
    g: torch.Tensor,
    subset: Subset,
    solver: str = "minres",
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    **solver_kwargs: Any,
) -> InfluenceResult:
    """FIF: ``delta = (H[P,P] + damping I)^-1 g[P]``, the influence of a model whose other parameters are frozen."""
    return _estimate("FIF", obj, g, subset, SolveOptions(solver, damping, tol, max_iter, solver_kwargs))


def projected_influence(
    obj: HessianOperator,
    g: torch.Tensor,
    subset: Subset,
    solver: str = "minres",
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    **solver_kwargs: Any,
) -> InfluenceResult:
    """PIF: ``delta = ((H + damping I)^-1 g)[P]``, full influence restricted to the subset."""
    return _estimate("PIF", obj, g, subset, SolveOptions(solver, damping, tol, max_iter, solver_kwargs))


def misfit(
    obj: HessianOperator,
    g: torch.Tensor,
    delta: torch.Tensor,
    subset: Subset | None = None,
    damping: float = 0.0,
) -> float:
    """``||(H + damping I) embed(delta) - g|| / ||g||``: the share of the target ``g`` that the update
    ``delta`` (on ``subset``, or on every parameter) leaves uncancelled, with ``H`` the curvature of ``obj``
    (one product).  For GIF it is the least-squares residual that :attr:`InfluenceResult.misfit` reports;
    for any other update (FIF, PIF, a rescaled step) the same yardstick."""
    op = as_operator(obj)
    g = _prepare(op, g)
    damping = checks.check_finite_number(damping, "damping", low=0.0)
    if subset is None:
        checks.check_vector(delta, op.num_params, "delta", device=op.device)
        full = delta.detach().to(op.dtype)
    else:
        p = checks.check_subset(subset, op.num_params, device=op.device)
        checks.check_vector(delta, p.numel(), "delta (one entry per index of the subset)", device=op.device)
        full = embed(delta.detach().to(op.dtype), p, op.num_params)
    hv = op.hvp(full)
    if damping:
        hv = hv + damping * full
    return float((hv - g).norm() / g.norm())


def project(full: InfluenceResult, subset: Subset) -> InfluenceResult:
    """PIF from an IF result: ``delta = (H^-1 g)[P]``, the IF solution sliced (no new HVP, same cost report).

    PIF is IF restricted to ``P`` by definition, so one IF solve serves PIF at every subset.
    """
    if full.subset is not None:
        raise checks.GifLiteError("project needs an IF result over all parameters (its subset is None)")
    p = check_subset(subset, full.delta.numel()).to(full.delta.device)
    return replace(full, delta=full.delta[p], subset=p)


def generalized_influence(
    obj: HessianOperator,
    g: torch.Tensor,
    subset: Subset,
    solver: str = "lsqr",
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    **solver_kwargs: Any,
) -> InfluenceResult:
    """GIF: ``delta = argmin_x ||(H + damping I)[:,P] x - g||_2 = pinv(H[:,P]) g`` (minimum norm).

    Matrix-free: ``H[:,P] x = H (x on P)`` and ``H[:,P]^T y = (H y)[P]`` cost one HVP each, so an LSQR
    iteration costs two.  ``solver="landweber"`` runs the paper's iteration (default 200 steps).
    """
    return _estimate("GIF", obj, g, subset, SolveOptions(solver, damping, tol, max_iter, solver_kwargs))


def second_order_influence(
    obj: HessianOperator,
    group_obj: Objective,
    fraction: float,
    solver: str = "minres",
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    **solver_kwargs: Any,
) -> InfluenceResult:
    """Second-order group influence of removing a group U (after Basu, You & Feizi 2020).

    ``obj`` is the full-data objective at its optimum (Hessian ``H``), ``group_obj`` the objective of the
    group alone with the same weight decay (gradient ``g_U = grad L_U + wd theta``, Hessian ``H_U``),
    ``fraction = p = m / n``, ``q = p / (1 - p)``:

    ``delta = q H^-1 g_U + q^2 H^-1 (H_U - H) H^-1 g_U``

    The exact retrained change is ``p (H - p H_U)^-1 g_U`` (for a quadratic loss); the first term alone
    (``q H^-1 g_U``, the first-order group influence) matches it to O(p^2), both terms to O(p^3).
    The solver options (``solver``, ``damping``, ``tol``, ``max_iter``, ``solver_kwargs``) are those of
    :func:`influence` and apply to both of its solves.
    """
    _check_groups(obj, {"group_obj": group_obj}, fraction)
    if group_obj.weight_decay != obj.objective.weight_decay:
        raise checks.GifLiteError("group_obj must use the same weight_decay as obj (g_U and H_U include it)")
    solve: dict[str, Any] = {
        "solver": solver,
        "damping": damping,
        "tol": tol,
        "max_iter": max_iter,
        **solver_kwargs,
    }
    q = fraction / (1.0 - fraction)
    g_u = group_obj.gradient()
    first = influence(obj, g_u, **solve)
    x1 = first.delta
    correction = group_obj.hvp(x1) - obj.hvp(x1) - damping * x1
    second = influence(obj, correction, **solve)
    return _two_solves(first, second, q * x1 + q * q * second.delta)


def _check_groups(op: HessianOperator, groups: dict[str, Objective], fraction: float) -> None:
    """Group objectives on the very model of ``obj`` (an Objective, or an operator standing for one), and
    ``fraction`` in (0, 1), equal to ``m / n`` when ``obj`` holds the full data (at least ``m / fraction``
    examples; fewer means a subsampled Hessian, not checked)."""
    obj = as_operator(op).objective
    fraction = checks.check_finite_number(fraction, "fraction", low=0.0, low_open=True)
    if not fraction < 1.0:
        raise checks.GifLiteError(f"fraction = m / n must lie in (0, 1), got {fraction}")
    for name, group in groups.items():
        if not isinstance(group, Objective):
            raise checks.GifLiteTypeError(f"{name} must be a gif_lite.Objective, got {type(group).__name__}")
        if len(group.params) != len(obj.params) or any(a is not b for a, b in zip(group.params, obj.params)):
            raise checks.GifLiteError(
                f"{name} must be an Objective on the same model as obj (the same parameter tensors); build "
                f"it with obj.model"
            )
        m, n = group.num_examples, op.num_examples
        # obj may be a subsample of the training data (a Hessian estimated on fewer examples than the n
        # behind fraction = m / n); when it holds at least m / fraction examples it is the full data,
        # and then fraction must be m / n (e.g. not m / (n - m))
        if n >= m / fraction * (1 - 1e-9) and not math.isclose(fraction, m / n, rel_tol=1e-6):
            raise checks.GifLiteError(
                f"fraction={fraction:g} disagrees with the data: {name} holds m={m} examples and obj n={n}, "
                f"so fraction = m / n = {m / n:g}; pass that (obj must be the full-data objective)"
            )


def _two_solves(first: InfluenceResult, second: InfluenceResult, delta: torch.Tensor) -> InfluenceResult:
    """The result of an estimator built from two IF solves (and two extra HVPs between them)."""
    return InfluenceResult(
        delta=delta,
        iterations=first.iterations + second.iterations,
        residual=max(first.residual, second.residual),
        converged=first.converged and second.converged,
        solver=first.solver,
        hvps=first.hvps + second.hvps + 2,
        subset=None,
        history=first.history + second.history,
        misfit=max(first.misfit, second.misfit),
    )


def second_order_relabel_influence(
    obj: HessianOperator,
    old_group: Objective,
    new_group: Objective,
    fraction: float,
    g: torch.Tensor,
    solver: str = "minres",
    damping: float = 0.0,
    tol: float | None = None,
    max_iter: int | None = None,
    **solver_kwargs: Any,
) -> InfluenceResult:
    """Newton step for relabelling a group, to second order in its share ``p = m / n``.

    Relabelling changes the objective by ``p (L_U,new - L_U,old)`` (weight decay cancels), so the
    new Hessian is ``H + p D`` with ``H`` the Hessian of ``obj`` (the objective the model was
    trained on) and ``D = H_U,new - H_U,old`` (the group's mean-loss Hessians, ``old_group`` and
    ``new_group``, without weight decay).  Expanding ``(H + p D)^-1 g`` with ``g = O(p)``:

    ``delta = H^-1 g - p H^-1 D H^-1 g``

    The first term is the first-order influence, the second the correction of order ``p^2``.
    ``damping`` adds ``damping * I`` to ``H`` in both solves; ``solver``, ``tol``, ``max_iter`` and
    ``solver_kwargs`` go to both :func:`influence` solves, as for the other estimators.

    This is the whole ``p^2`` term only for a loss that is quadratic in ``theta``.  Otherwise the
    retrained change also carries ``-1/2 H^-1 T[delta_1, delta_1]`` (``T`` the third derivative of
    the objective, ``delta_1 = H^-1 g``), of the same order ``p^2``, which this estimator drops.  For
    softmax regression ``D = 0``, so the estimate equals first-order influence and its whole ``p^2``
    error against retraining is that dropped term (tests/test_second_order_retraining.py).
    """
    if getattr(new_group, "num_examples", None) != getattr(old_group, "num_examples", None):
        raise checks.GifLiteError(
            f"old_group holds {getattr(old_group, 'num_examples', None)} examples but new_group "
            f"{getattr(new_group, 'num_examples', None)}; both must be the same relabelled group (old and new labels)"
        )
    _check_groups(obj, {"old_group": old_group, "new_group": new_group}, fraction)
    if new_group.weight_decay != old_group.weight_decay:
        raise checks.GifLiteError("old_group and new_group must use the same weight_decay (it cancels in D)")
    solve: dict[str, Any] = {
        "solver": solver,
        "damping": damping,
        "tol": tol,
        "max_iter": max_iter,
        **solver_kwargs,
    }
    first = influence(obj, g, **solve)
    x1 = first.delta
    dx = new_group.hvp(x1) - old_group.hvp(x1)
    second = influence(obj, dx, **solve)
    return _two_solves(first, second, x1 - fraction * second.delta)


#: The four estimators by name, each ``fn(obj, g, subset, solver=..., damping=..., tol=..., max_iter=...)``
#: (IF takes no subset).
ESTIMATORS: dict[str, Callable[..., InfluenceResult]] = {
    "IF": influence,
    "FIF": frozen_influence,
    "PIF": projected_influence,
    "GIF": generalized_influence,
}


class Estimators:
    """IF, FIF, PIF and GIF by name, sharing one IF solve per ``(objective, g)`` between IF and every PIF.

    ``options`` (``solver``, ``damping``, ``tol``, ``max_iter``, ...) go to the IF solve and to FIF;
    ``gif_options`` to GIF (default: ``options``).  ``estimators("PIF", obj, g, P)`` slices the remembered
    IF solution (:func:`project`), so PIF at many subsets costs one solve.
    """

    def __init__(
        self, options: Mapping[str, Any] | None = None, gif_options: Mapping[str, Any] | None = None
    ) -> None:
        self.options = dict(options or {})
        self.gif_options = dict(self.options if gif_options is None else gif_options)
        self._key = ("Estimators IF solve", object())  # this instance's entry in each objective's state cache

    def full_solve(self, obj: Objective, g: torch.Tensor) -> InfluenceResult:
        """IF on ``(obj, g)``, solved once and remembered on ``obj.state_cache()``: kept while ``g`` and the
        parameters stay the same, dropped as soon as either changes (an update, a training step)."""
        cache = obj.state_cache()
        last = cache.get(self._key)
        if last is None or not torch.equal(last[0], g):
            cache[self._key] = last = (g.detach().clone(), influence(obj, g, **self.options))
        return last[1]

    def __call__(
        self, name: str, obj: Objective, g: torch.Tensor, subset: Subset | None = None
    ) -> InfluenceResult:
        """The estimate of ``name`` (one of :data:`ESTIMATORS`); FIF, PIF and GIF need ``subset``."""
        if name not in ESTIMATORS:
            raise checks.GifLiteError(f"unknown estimator {name!r}; valid: {', '.join(ESTIMATORS)}")
        if name == "IF":
            return self.full_solve(obj, g)
        if subset is None:
            raise checks.GifLiteError(
                f"{name} needs a parameter subset P; IF is the only estimator over all parameters"
            )
        if name == "PIF":
            return project(self.full_solve(obj, g), subset)
        return ESTIMATORS[name](obj, g, subset, **(self.gif_options if name == "GIF" else self.options))
