"""Linear solvers on matrix-vector products: the numerical core under every estimator.

Square systems ``A x = b`` (A symmetric): ``cg`` (A positive definite), ``minres`` (A symmetric,
possibly indefinite), ``lissa`` (Neumann series, A positive definite and ``scale > lambda_max / 2``).
Least squares ``min_x ||A x - b||`` (A any shape): ``lsqr`` and ``landweber`` (the GIF paper's
Richardson iteration on the normal equations ``A^T A x = A^T b``).  ``direct`` is the dense oracle.

Every solver returns a :class:`SolveResult` with the iterations, the relative residual (see
:func:`relative_residual`) and whether it met ``tol``, and warns with :class:`ConvergenceWarning` when
it stops unconverged.  All are matrix-free except ``direct``: they only touch ``A`` through ``matvec``
(and ``rmatvec`` for least squares), and allocate O(len(b)) memory.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import checks
from .types import MatVec

__all__ = [
    "LEAST_SQUARES_SOLVERS",
    "SQUARE_SOLVERS",
    "ConvergenceWarning",
    "MatMat",
    "SolveResult",
    "batched_lsqr",
    "batched_minres",
    "block_cg",
    "cg",
    "direct",
    "finish",
    "landweber",
    "lissa",
    "lsqr",
    "minres",
    "relative_residual",
]

#: ``A @ V`` for a block ``V`` of column vectors (``n x s``): one batched product for all ``s`` columns.
MatMat = Callable[[torch.Tensor], torch.Tensor]

SQUARE_SOLVERS = ("direct", "cg", "minres", "lissa", "lsqr", "landweber")
LEAST_SQUARES_SOLVERS = ("direct", "lsqr", "landweber")


class ConvergenceWarning(UserWarning):
    """A solver stopped before its relative residual reached ``tol``."""


@dataclass
class SolveResult:
    """x, iterations, relative residual, converged flag, residual history, matvec count and misfit."""

    x: torch.Tensor
    iterations: int
    residual: float
    converged: bool
    history: list[float] = field(default_factory=list)
    matvecs: int = 0
    #: ``||b - A x|| / ||b||``: for least squares the share of ``b`` that ``A x`` cannot reproduce
    #: (positive even at the solution); for square systems the same number as ``residual``.
    misfit: float = math.nan


def relative_residual(
    matvec: MatVec,
    b: torch.Tensor,
    x: torch.Tensor,
    rmatvec: MatVec | None = None,
    atb_norm: float | None = None,
) -> float:
    """``||b - A x|| / ||b||``; for least squares (``rmatvec`` given) ``||A^T (b - A x)|| / ||A^T b||``.

    The least-squares form is zero exactly at a minimiser of ``||A x - b||`` even when the system has
    no solution, so it measures convergence for GIF where ``||A x - b||`` itself stays positive.
    """
    b, maps = _as_vector(b, (matvec,) if rmatvec is None else (matvec, rmatvec), square=False)
    if not isinstance(x, torch.Tensor) or x.dim() != 1:
        raise checks.GifLiteTypeError(f"x must be a 1-D tensor, got {_describe(x)}")
    if rmatvec is None and x.shape != b.shape:
        raise checks.GifLiteError(
            f"x must have b's shape {tuple(b.shape)} (A is square), got {tuple(x.shape)}"
        )
    matvec, rmatvec = maps[0], (maps[1] if rmatvec is not None else None)
    r = b - matvec(x)
    if rmatvec is None:
        return _ratio(r.norm(), b.norm())
    return _ratio(rmatvec(r).norm(), rmatvec(b).norm() if atb_norm is None else atb_norm)


def _least_squares_check(
    matvec: MatVec, rmatvec: MatVec, b: torch.Tensor, x: torch.Tensor, atb_norm: float
) -> tuple[float, float]:
    """``(||A^T r|| / ||A^T b||, ||r|| / ||b||)`` with ``r = b - A x``, from one matvec and one rmatvec."""
    r = b - matvec(x)
    return _ratio(rmatvec(r).norm(), atb_norm), _ratio(r.norm(), b.norm())


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _ratio(num: torch.Tensor | float, den: torch.Tensor | float) -> float:
    num, den = float(num), float(den)
    return 0.0 if num == 0.0 else num / den if den > 0 else math.inf


def finish(name: str, result: SolveResult, tol: float, hint: str = "") -> SolveResult:
    """``result`` checked: a non-finite residual raises, an unconverged one warns (:class:`ConvergenceWarning`)."""
    return _finish(name, result, tol, hint, stacklevel=4)


def _finish(name: str, result: SolveResult, tol: float, hint: str = "", stacklevel: int = 3) -> SolveResult:
    if not math.isfinite(result.residual):
        raise FloatingPointError(f"{name} produced a non-finite residual; check the inputs, or add damping")
    if math.isnan(result.misfit):  # square system: the misfit is the residual
        result.misfit = result.residual
    if not result.converged:
        if name.startswith("direct"):  # a factorisation: no iterations to add
            head = f"{name} solved with relative residual {result.residual:.2e} > tol={tol:.1e}"
            advice = "Loosen tol, or add damping."
        else:
            head = (
                f"{name} stopped after {result.iterations} iterations with relative residual "
                f"{result.residual:.2e} > tol={tol:.1e}"
            )
            advice = "Raise max_iter, loosen tol, or add damping."
        warnings.warn(f"{head}. {advice} {hint}".rstrip(), ConvergenceWarning, stacklevel=stacklevel)
    return result


def _check_reorthogonalize(reorthogonalize: object) -> None:
    if reorthogonalize is not None and not isinstance(reorthogonalize, bool):
        raise checks.GifLiteTypeError(
            f"reorthogonalize must be True, False or None (automatic), got {reorthogonalize!r}"
        )


def _check_tol(tol: float, max_iter: int) -> None:
    checks.check_finite_number(tol, "tol", low=0.0, low_open=True)
    checks.check_max_iter(max_iter)


def _as_vector(
    b: object, maps: tuple[MatVec, ...], *, square: bool, name: str = "b"
) -> tuple[torch.Tensor, tuple[MatVec, ...]]:
    """A single-vector solve's inputs checked before the first product: ``b`` a finite floating 1-D tensor,
    the maps callable; returned wrapped so that a product of the wrong shape is named, not a torch error.
    The first map (``A x``) must give ``b``'s shape; for least squares the second (``A^T u``) a 1-D vector."""
    for f in maps:
        if not callable(f):
            raise checks.GifLiteTypeError(f"the products with A must be callables, got {type(f).__name__}")
    if not isinstance(b, torch.Tensor):
        raise checks.GifLiteTypeError(f"{name} must be a 1-D tensor, got {type(b).__name__}")
    if b.dim() != 1:
        raise checks.GifLiteError(
            f"{name} must be a 1-D vector, got shape {tuple(b.shape)}; flatten it with .reshape(-1), "
            "or use block_cg / batched_minres / batched_lsqr for a block of right-hand sides"
        )
    if not b.is_floating_point():
        raise checks.GifLiteTypeError(
            f"{name} must be a floating tensor, got {b.dtype}; convert with .double()"
        )
    if not bool(torch.isfinite(b).all()):
        raise checks.GifLiteError(f"{name} holds NaN or infinite entries; check how it was computed")
    shapes = (tuple(b.shape), None if not square else tuple(b.shape)) if len(maps) > 1 else (tuple(b.shape),)
    return b, tuple(
        _checked_map(f, which, shape) for f, which, shape in zip(maps, ("matvec", "rmatvec"), shapes)
    )


def _checked_map(f: MatVec, name: str, shape: tuple[int, ...] | None) -> MatVec:
    """``f`` with every product checked: a tensor of ``shape`` (any 1-D vector when ``None``)."""

    def checked(v: torch.Tensor) -> torch.Tensor:
        out = f(v)
        if not isinstance(out, torch.Tensor) or (tuple(out.shape) != shape if shape else out.dim() != 1):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            want = shape if shape else "a 1-D vector"
            raise checks.GifLiteError(
                f"{name} returned {got} for an input of shape {tuple(v.shape)}; it must return {want}"
            )
        return out

    return checked


def _start(
    b: torch.Tensor, tol: float, max_iter: int | None, default_iter: int
) -> tuple[int, float, SolveResult | None]:
    """An iterative square solve's start: its ``max_iter``, ``||b||``, and the answer ``x = 0`` when ``b = 0``."""
    max_iter = default_iter if max_iter is None else max_iter  # 0 is refused, never the default
    _check_tol(tol, max_iter)
    bnorm = float(b.norm())
    done = SolveResult(torch.zeros_like(b), 0, 0.0, True, [0.0], misfit=0.0) if bnorm == 0 else None
    return max_iter, bnorm, done


# ---------------------------------------------------------------------------------------- stagnation
#: A residual that has not fallen below this share of its best over a window has stagnated.
_STAGNATION_FACTOR = 0.9
#: Iterations a Krylov solver (CG, MINRES, LSQR and their block forms) may go without that progress:
#: ``max(50, n)``; in exact arithmetic they finish within ``n``, so a converging run never waits as long.
_KRYLOV_WINDOW = 50
#: Iterations a stationary solver (LiSSA, Landweber) may go without that progress at the dtype's floor.
_STATIONARY_WINDOW = 50
#: The residual a dtype can resolve: a relative residual within ``_FLOOR * eps(dtype)`` is rounding.
_FLOOR = 1e3


def _floor(dtype: torch.dtype) -> float:
    """The relative residual below which ``dtype``'s rounding dominates: ``1e3 * eps(dtype)``."""
    return _FLOOR * torch.finfo(dtype).eps


class _Stagnation:
    """Watches a solver's residual history and says when it has stagnated.

    Stagnated at iteration ``j`` of ``max_iter``: over the last ``window`` iterations the best residual
    fell by less than 10%, and at that rate ``tol`` stays out of reach in the iterations left.  A
    stationary iteration (``floor_only``; its residual falls monotonically in exact arithmetic) also
    needs the best to lie at the dtype's floor and the residual to have risen (or not fallen at all) in
    the window, so a slow but steady run is never stopped.  Runs that meet ``tol`` are never stopped: they stop first.
    """

    def __init__(
        self, window: int, tol: float, max_iter: int, dtype: torch.dtype, floor_only: bool = False
    ) -> None:
        self.window, self.tol, self.max_iter = window, tol, max_iter
        self.floor, self.floor_only = _floor(dtype), floor_only
        self.best: list[float] = []  # best[k]: the smallest residual among the first k + 1
        self.last_rise, self.last_value = -1, math.inf
        self.dtype = dtype

    def update(self, value: float) -> bool:
        """Record the newest residual; True when the run has stagnated."""
        best = self.best
        if best and value > self.last_value:
            self.last_rise = len(best)
        self.last_value = value
        best.append(min(value, best[-1]) if best else value)
        k = len(best) - 1
        if k < self.window or not math.isfinite(value):
            return False
        now, then = best[-1], best[-1 - self.window]
        if now <= self.tol or now < _STAGNATION_FACTOR * then:
            return False
        steady = self.last_rise <= k - self.window and now < then  # fell at every step of the window
        if self.floor_only and (steady or now > self.floor):
            return False
        left = self.max_iter - k
        if self.tol > 0 and 0 < now < then:  # the rate of the window, extrapolated
            needed = self.window * math.log(self.tol / now) / math.log(now / then)
            if needed <= left:
                return False
        return True

    def hint(self, what: str = "") -> str:
        """What limits the run: the dtype's floor, or the conditioning (damping helps)."""
        now = self.best[-1]
        eps = torch.finfo(self.dtype).eps
        head = f"Stagnated: no 10% progress in {self.window} iterations (best residual {now:.1e})"
        if now <= self.floor:
            return (
                f"{head}, at {self.dtype}'s rounding floor (eps = {eps:.1e}; a residual near "
                f"eps * ||b|| is all it resolves): loosen tol above {now:.0e}, or solve in float64."
            )
        return (
            f"{head}: the matrix is ill-conditioned or singular for {what or 'this solver'}; add "
            "damping, or loosen tol."
        )


# ---------------------------------------------------------------------------------------- direct
#: The dtypes torch factorises dense matrices in (LU, Cholesky, SVD).
_FACTOR_DTYPES = (torch.float32, torch.float64)


def _factor_dtype_message(dtype: torch.dtype) -> str:
    return (
        f"solver='direct' factorises a dense matrix, which torch does in float32 and float64, not {dtype}; "
        "use an iterative solver ('minres', 'lsqr' for GIF), or convert the model with .float()"
    )


def direct(
    a: torch.Tensor, b: torch.Tensor, least_squares: bool = False, *, tol: float | None = None
) -> SolveResult:
    """Dense oracle: ``x = A^-1 b``, or ``x = pinv(A) b`` (minimum-norm least squares).

    ``converged`` says whether the relative residual (``||A^T r|| / ||A^T b||`` for least squares) met
    ``tol``; ``None`` asks for a third of the dtype's digits, ``eps^(1/3)`` (6e-6 in float64, 5e-3 in
    float32): a backward-stable solve misses it only when ``kappa(A)`` is near ``1 / eps^(2/3)``, i.e.
    the matrix is numerically singular, and then it warns (:class:`ConvergenceWarning`) instead of
    reporting success.
    """
    if not isinstance(a, torch.Tensor) or a.dim() != 2 or not a.is_floating_point():
        raise checks.GifLiteTypeError(f"a must be a floating 2-D tensor (the matrix), got {_describe(a)}")
    if a.dtype not in _FACTOR_DTYPES:
        raise checks.GifLiteError(_factor_dtype_message(a.dtype))
    b, _ = _as_vector(b, (), square=True)
    if a.shape[0] != b.shape[0]:
        raise checks.GifLiteError(
            f"b has {b.shape[0]} entries but a has {a.shape[0]} rows; they must agree (A x = b)"
        )
    if not bool(torch.isfinite(a).all()):
        raise checks.GifLiteError("a holds NaN or infinite entries; check how it was computed")
    tol = torch.finfo(b.dtype).eps ** (1 / 3) if tol is None else tol
    _check_tol(tol, 1)
    if least_squares or a.shape[0] != a.shape[1]:
        x = torch.linalg.pinv(a) @ b
        r = b - a @ x
        res = _ratio((a.T @ r).norm(), (a.T @ b).norm())
        result = SolveResult(x, 1, res, res <= tol, [res], 0, misfit=_ratio(r.norm(), b.norm()))
        return _finish("direct", result, tol, "The matrix is (nearly) rank deficient: add damping.")
    try:
        x = torch.linalg.solve(a, b)
    except RuntimeError as e:  # singular
        raise checks.GifLiteError(
            "the matrix is singular, so the system has no unique solution; add damping, or use "
            "generalized_influence (least squares) instead"
        ) from e
    res = _ratio((b - a @ x).norm(), b.norm())
    result = SolveResult(x=x, iterations=1, residual=res, converged=res <= tol, history=[res], misfit=res)
    return _finish("direct", result, tol, "The matrix is (nearly) singular: add damping.")


# ---------------------------------------------------------------------------------------- cg
def cg(matvec: MatVec, b: torch.Tensor, *, tol: float = 1e-8, max_iter: int | None = None) -> SolveResult:
    """Conjugate gradients for symmetric positive definite ``A``; stops if it meets a non-positive curvature."""
    b, (matvec,) = _as_vector(b, (matvec,), square=True)
    max_iter, bnorm, done = _start(b, tol, max_iter, 10 * b.numel())
    if done is not None:
        return done
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = float(r @ r)
    history, it, hint = [1.0], 0, ""
    stag = _Stagnation(max(_KRYLOV_WINDOW, b.numel()), tol, max_iter, b.dtype)
    stag.update(1.0)
    while it < max_iter:
        ap = matvec(p)
        curvature = float(p @ ap)
        if curvature <= 0:
            hint = "CG met non-positive curvature: the matrix is not positive definite; use 'minres'."
            break
        alpha = rr / curvature
        x += alpha * p
        r -= alpha * ap
        rr_new = float(r @ r)
        it += 1
        history.append(math.sqrt(rr_new) / bnorm)
        if history[-1] <= tol:
            break
        if stag.update(history[-1]):
            hint = stag.hint("CG")
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    res = relative_residual(matvec, b, x)
    return _finish("cg", SolveResult(x, it, res, res <= tol, history, it + 1), tol, hint)


# ---------------------------------------------------------------------------------------- minres
def minres(matvec: MatVec, b: torch.Tensor, *, tol: float = 1e-8, max_iter: int | None = None) -> SolveResult:
    """MINRES (Paige & Saunders 1975) for symmetric, possibly indefinite ``A``.

    Lanczos builds ``A V_k = V_{k+1} T_k``; Givens rotations turn ``min ||beta_1 e_1 - T_k y||`` into a
    triangular solve, and ``x_k = V_k y_k`` is updated with a three-term recurrence.
    """
    b, (matvec,) = _as_vector(b, (matvec,), square=True)
    max_iter, beta1, done = _start(b, tol, max_iter, 10 * b.numel())
    if done is not None:
        return done
    x = torch.zeros_like(b)
    v_prev, v = torch.zeros_like(b), b / beta1
    w_prev2, w_prev = torch.zeros_like(b), torch.zeros_like(b)
    beta, eta = beta1, beta1
    c_prev2 = c_prev = 1.0
    s_prev2 = s_prev = 0.0
    history, it, hint = [1.0], 0, ""
    stag = _Stagnation(max(_KRYLOV_WINDOW, b.numel()), tol, max_iter, b.dtype)
    stag.update(1.0)
    while it < max_iter:
        p = matvec(v)
        alpha = float(v @ p)
        p = p - alpha * v - beta * v_prev
        beta_next = float(p.norm())
        # rotate the new column (beta, alpha, beta_next) of T_k by the two previous rotations
        eps = s_prev2 * beta
        delta_bar = c_prev2 * beta
        delta = c_prev * delta_bar + s_prev * alpha
        gamma_bar = -s_prev * delta_bar + c_prev * alpha
        gamma = math.hypot(gamma_bar, beta_next)
        if gamma == 0.0:  # exactly singular in the Krylov space
            break
        c, s = gamma_bar / gamma, beta_next / gamma
        w = (v - delta * w_prev - eps * w_prev2) / gamma
        x += (c * eta) * w
        eta = -s * eta
        it += 1
        history.append(abs(eta) / beta1)
        if history[-1] <= tol or beta_next == 0.0:
            break
        if stag.update(history[-1]):
            hint = stag.hint("MINRES")
            break
        v_prev, v = v, p / beta_next
        w_prev2, w_prev = w_prev, w
        c_prev2, c_prev, s_prev2, s_prev = c_prev, c, s_prev, s
        beta = beta_next
    res = relative_residual(matvec, b, x)
    return _finish("minres", SolveResult(x, it, res, res <= tol, history, it + 1), tol, hint)


# ---------------------------------------------------------------------------------------- lissa
def lissa(
    matvec: MatVec,
    b: torch.Tensor,
    *,
    scale: float | None = None,
    tol: float = 1e-8,
    max_iter: int | None = None,
) -> SolveResult:
    """LiSSA's Neumann series (Agarwal et al. 2017; Koh & Liang 2017), full batch.

    ``x_{j+1} = b + (I - A / scale) x_j`` and ``A^-1 b = lim x_j / scale``.  Converges iff every
    eigenvalue of ``A`` lies in ``(0, 2 * scale)``; ``scale=None`` estimates ``lambda_max`` by 20 power
    iterations and uses ``scale = 1.1 * lambda_max``.  Damping is the caller's ``A = H + damping * I``.
    """
    b, (matvec,) = _as_vector(b, (matvec,), square=True)
    if scale is not None:
        checks.check_finite_number(scale, "scale", low=0.0, low_open=True)
    max_iter, bnorm, done = _start(b, tol, max_iter, 10_000)
    if done is not None:
        return done
    extra = 0
    if scale is None:
        lam, extra = _power_iteration(matvec, b, 20)
        scale = 1.1 * lam
    if not scale > 0:
        raise checks.GifLiteError(f"lissa needs scale > 0 (above half the largest eigenvalue), got {scale}")
    y = b.clone()  # y_j = scale * x_j
    history, it, hint = [], 0, ""
    stag = _Stagnation(_STATIONARY_WINDOW, tol, max_iter, b.dtype, floor_only=True)
    while it < max_iter:
        r = b - matvec(y) / scale  # residual of the current estimate x = y / scale
        history.append(float(r.norm()) / bnorm)
        if history[-1] <= tol:
            break
        if not math.isfinite(history[-1]) or history[-1] > 1e8:
            hint = "LiSSA diverged: A has an eigenvalue <= 0 or >= 2*scale; add damping or raise scale."
            break
        if stag.update(history[-1]):
            hint = stag.hint("LiSSA")
            break
        y += r
        it += 1
    x = y / scale
    res = relative_residual(matvec, b, x) if math.isfinite(history[-1]) else math.inf
    if not math.isfinite(res):
        warnings.warn(hint or "LiSSA diverged", ConvergenceWarning, stacklevel=2)
        return SolveResult(x, it, res, False, history, it + 1 + extra)
    return _finish("lissa", SolveResult(x, it, res, res <= tol, history, it + 2 + extra), tol, hint)


def _power_iteration(matvec: MatVec, start: torch.Tensor, steps: int) -> tuple[float, int]:
    """Largest |eigenvalue| of symmetric ``A`` by power iteration from ``start``."""
    v = start / start.norm()
    lam = 0.0
    for _ in range(steps):
        w = matvec(v)
        lam = float(w.norm())
        if lam == 0:
            break
        v = w / lam
    return lam, steps


# ---------------------------------------------------------------------------------------- lsqr
def lsqr(
    matvec: MatVec,
    rmatvec: MatVec,
    b: torch.Tensor,
    *,
    tol: float = 1e-8,
    max_iter: int | None = None,
    reorthogonalize: bool | None = None,
) -> SolveResult:
    """LSQR (Paige & Saunders 1982): Golub-Kahan bidiagonalisation for ``min ||A x - b||``.

    Mathematically CG on the normal equations, but stable; from ``x_0 = 0`` it converges to the
    minimum-norm least-squares solution ``pinv(A) b``.  Stops when the estimate of
    ``||A^T r_k|| / ||A^T b||`` reaches ``tol``; one ``matvec`` and one ``rmatvec`` per iteration.

    ``reorthogonalize`` keeps the right Lanczos vectors ``v_k`` (length ``len(x)``) and re-orthogonalises
    each new one against them (one-sided reorthogonalisation).  In floating point the ``v_k`` lose
    orthogonality and plain LSQR needs many more steps than the ``len(x)`` that exact arithmetic
    guarantees; for GIF, where ``len(x) = |P|`` is small, keeping them is cheap and restores that bound.
    ``None`` turns it on when ``len(x) <= 20,000``.
    """
    b, (matvec, rmatvec) = _as_vector(b, (matvec, rmatvec), square=False)
    _check_reorthogonalize(reorthogonalize)
    _check_tol(tol, 1 if max_iter is None else max_iter)
    beta = float(b.norm())
    u = b / beta if beta > 0 else b.clone()
    v = rmatvec(u)
    alpha = float(v.norm())
    matvecs = 1
    if beta == 0 or alpha == 0:  # b = 0, or b orthogonal to range(A): x = 0 is optimal
        return SolveResult(torch.zeros_like(v), 0, 0.0, True, [0.0], matvecs, misfit=1.0 if beta > 0 else 0.0)
    max_iter = 10 * v.numel() if max_iter is None else max_iter
    _check_tol(tol, max_iter)
    v = v / alpha
    keep = reorthogonalize if reorthogonalize is not None else v.numel() <= 20_000
    basis = [v] if keep else []
    w, x = v.clone(), torch.zeros_like(v)
    phi_bar, rho_bar = beta, alpha
    normar0 = alpha * beta
    history, it, hint = [1.0], 0, ""
    stag = _Stagnation(max(_KRYLOV_WINDOW, v.numel()), tol, max_iter, v.dtype)
    stag.update(1.0)
    while it < max_iter:
        u = matvec(v) - alpha * u
        beta = float(u.norm())
        if beta > 0:
            u = u / beta
        v = rmatvec(u) - beta * v
        if basis:
            stacked = torch.stack(basis)
            for _ in range(2):  # classical Gram-Schmidt, twice is enough
                v = v - stacked.T @ (stacked @ v)
        alpha = float(v.norm())
        if alpha > 0:
            v = v / alpha
            if keep:
                basis.append(v)
        matvecs += 2
        rho = math.hypot(rho_bar, beta)
        c, s = rho_bar / rho, beta / rho
        theta = s * alpha
        rho_bar = -c * alpha
        phi = c * phi_bar
        phi_bar = s * phi_bar
        x += (phi / rho) * w
        w = v - (theta / rho) * w
        it += 1
        history.append(phi_bar * alpha * abs(c) / normar0)
        if history[-1] <= tol or alpha == 0.0:
            break
        if stag.update(history[-1]):
            hint = stag.hint("LSQR")
            break
    res, misfit = _least_squares_check(matvec, rmatvec, b, x, normar0)
    result = SolveResult(x, it, res, res <= tol, history, matvecs + 2, misfit)
    return _finish("lsqr", result, tol, hint)


# ---------------------------------------------------------------------------------------- landweber
def landweber(
    matvec: MatVec,
    rmatvec: MatVec,
    b: torch.Tensor,
    *,
    tol: float = 1e-8,
    max_iter: int = 200,
    step_tol: float = 1e-4,
    normalizer: float = 1.0,
    normalizer_step: float = 0.5,
    max_restarts: int = 100,
) -> SolveResult:
    """The GIF paper's solver: Landweber/Richardson iteration on the normal equations.

    With ``c`` the normalizer, ``x_0 = A^T b / c^2`` and ``x_{k+1} = x_0 + x_k - A^T A x_k / c^2``
    (two products per step).  As in the paper's code, it stops when ``||x_{k+1} - x_k||`` falls below
    ``step_tol * sqrt(len(x))`` or after ``max_iter`` steps, and restarts with ``c += normalizer_step``
    whenever that step length grows (checked every other step).  It converges at the rate
    ``1 - sigma_min(A)^2 / c^2``: about ``kappa(A)^2`` steps, versus about ``kappa(A)`` for LSQR.
    ``converged`` reports whether the true relative residual met ``tol``, not the paper's step test.

    The iteration converges only once ``c > sigma_max(A) / sqrt(2)``, so from a small normalizer the
    paper's rule restarts about ``sigma_max(A) / (sqrt(2) normalizer_step)`` times, and its code pays
    at least seven products for each restart (hundreds of restarts on a barely trained network).  Here ``A^T b`` is computed once, and after the first restart
    the outcome of the rule's first two checks (steps 2 and 4) is foreseen for every later ``c`` from
    five products ``(A^T A)^j A^T b`` (see :func:`_landweber_foresight`): a normalizer whose restart is
    certain is skipped without products, any other is run.  The restarts, the final normalizer and
    the answer are those of the paper's rule; only the products spent on doomed restarts are saved.
    """
    b, (matvec, rmatvec) = _as_vector(b, (matvec, rmatvec), square=False)
    _check_tol(tol, max_iter)
    c = checks.check_finite_number(normalizer, "normalizer", low=0.0, low_open=True)
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
        raise checks.GifLiteError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
    checks.check_finite_number(normalizer_step, "normalizer_step", low=0.0, low_open=True)
    checks.check_finite_number(step_tol, "step_tol", low=0.0)
    atb = rmatvec(b)  # the same for every normalizer: x_0 = A^T b / c^2
    matvecs, restarts, foreseen = 1, 0, 0
    threshold = step_tol * math.sqrt(atb.numel())
    foresight: _LandweberForesight | None = None
    stagnated = ""
    while True:
        while foresight is not None and foresight.doomed(c, threshold, max_iter):
            restarts, foreseen = restarts + 1, foreseen + 1
            _landweber_restart_limit(restarts, max_restarts, c)
            c += normalizer_step
        x0 = atb / c**2
        x, diff_old, history, it, diverged = x0.clone(), math.inf, [], 0, False
        stag = _Stagnation(_STATIONARY_WINDOW, 0.0, max_iter, atb.dtype, floor_only=True)
        while it < max_iter:
            x_new = x0 + x - rmatvec(matvec(x)) / c**2
            matvecs += 2
            diff = float((x_new - x).norm())
            x = x_new
            history.append(diff)
            if stag.update(_ratio(diff, x.norm())):  # steps at the rounding floor of ||x||
                stagnated = stag.hint("Landweber")
                break
            if it % 2 == 0:
                if diff > diff_old or not math.isfinite(diff):
                    diverged = True
                    break
                diff_old = diff
            it += 1
            if diff <= threshold:
                break
        if not diverged:
            break
        restarts += 1
        at_floor = _ratio(min(history), x.norm()) <= _floor(atb.dtype)
        _landweber_restart_limit(restarts, max_restarts, c, at_floor)
        c += normalizer_step
        if foresight is None:
            foresight = _landweber_foresight(matvec, rmatvec, atb)
            matvecs += foresight.matvecs
    res, misfit = _least_squares_check(matvec, rmatvec, b, x, float(atb.norm()))
    note = f"(paper's iteration; normalizer {c:g} after {restarts} restarts, {foreseen} of them foreseen)"
    note = f"{stagnated} {note}".lstrip()
    return _finish("landweber", SolveResult(x, it, res, res <= tol, history, matvecs + 2, misfit), tol, note)


def _landweber_restart_limit(restarts: int, max_restarts: int, c: float, at_floor: bool = False) -> None:
    if restarts > max_restarts and at_floor:
        raise FloatingPointError(
            f"landweber restarted {restarts} times (normalizer {c}) with its steps at the dtype's rounding "
            "floor, where they stop falling and the paper's rule reads a rise as divergence: raise "
            "step_tol, or solve in float64"
        )
    if restarts > max_restarts:
        raise FloatingPointError(
            f"landweber diverged after {restarts} restarts (normalizer {c}); the iteration needs a "
            "normalizer above sigma_max(A) / sqrt(2): raise normalizer, normalizer_step or max_restarts"
        )


@dataclass
class _LandweberForesight:
    """The Gram matrix of ``w_j = (A^T A)^j A^T b`` (``j <= 5``, float64) and the products it cost.

    With ``s = 1 / c^2`` the paper's step lengths are ``d_k = ||x_{k+1} - x_k|| = s ||(I - s A^T A)^(k+1)
    A^T b||``, a combination of the ``w_j`` for ``k <= 4``, so their norms for any ``c`` follow from the
    Gram matrix without products.  ``gram`` holds ``W^T W`` of the unit vectors ``w_j / ||w_j||`` and
    ``scales`` the norms ``||w_j||``.
    """

    gram: torch.Tensor
    scales: list[float]
    matvecs: int
    #: Relative margin by which a foreseen step length must grow before the restart counts as certain:
    #: the foresight's rounding (float32 products, at most ~300-fold cancellation in the binomial sums
    #: near the threshold) stays well below it; a normalizer within the margin is run, not foreseen.
    margin: float = 1e-2

    def step_lengths(self, c: float) -> list[float]:
        """``d_0 ... d_4`` at normalizer ``c`` (``inf`` where they overflow)."""
        s = 1.0 / c**2
        out = []
        for k in range(len(self.scales) - 1):
            coef = [math.comb(k + 1, j) * (-s) ** j * self.scales[j] for j in range(k + 2)]
            a = torch.tensor(coef + [0.0] * (len(self.scales) - k - 2), dtype=torch.float64)
            if not bool(torch.isfinite(a).all()):
                return [math.inf] * (len(self.scales) - 1)
            out.append(s * math.sqrt(max(float(a @ self.gram @ a), 0.0)))
        return out

    def doomed(self, c: float, threshold: float, max_iter: int) -> bool:
        """Whether the paper's rule certainly restarts at ``c``: a step length grows at check 2 or 4."""
        d = self.step_lengths(c)
        if not all(math.isfinite(v) for v in d):
            return False  # no foresight: run it
        grow = 1.0 + self.margin
        for check in (2, 4):
            running = max_iter > check and all(v > threshold * grow for v in d[:check])
            if running and d[check] > d[check - 2] * grow:
                return True
        return False


def _landweber_foresight(matvec: MatVec, rmatvec: MatVec, atb: torch.Tensor) -> _LandweberForesight:
    """``(A^T A)^j A^T b`` for ``j <= 5`` (five products ``A^T A``, each of a unit vector, so nothing
    overflows), as the Gram matrix of their directions and their norms."""
    units, scales, w, scale = [], [], atb, 1.0
    for j in range(6):
        norm = float(w.norm())
        scale *= norm  # ||(A^T A)^j A^T b||: each w is A^T A times the previous unit vector
        scales.append(scale)
        units.append(w.double() / norm if norm > 0 else torch.zeros_like(w, dtype=torch.float64))
        if j < 5:
            w = rmatvec(matvec(units[-1].to(atb.dtype)))
    stacked = torch.stack(units)
    return _LandweberForesight(stacked @ stacked.T, scales, matvecs=10)


# ---------------------------------------------------------------------------------------- many right-hand sides
# ``block_cg``, ``batched_minres`` and ``batched_lsqr`` solve for a block ``B`` (n x s) of right-hand sides
# at once; each iteration multiplies ``A`` by one block (``matmat``), which costs far less than ``s``
# separate products (one backward pass for the block).  ``residual`` is the largest relative residual
# over the columns, ``matvecs`` counts single-vector products (a block of r columns counts r).


def _as_block(
    b: torch.Tensor, tol: float, max_iter: int | None, *maps: MatMat, name: str = "b"
) -> torch.Tensor:
    """Every input of a block solver checked before the first product: the maps callable, ``b`` a finite
    floating 2-D block, ``tol`` > 0 and ``max_iter`` a positive int or None."""
    for f in maps:
        if not callable(f):
            raise checks.GifLiteTypeError(f"the products with A must be callables, got {type(f).__name__}")
    if not isinstance(b, torch.Tensor):
        raise checks.GifLiteTypeError(f"{name} must be a tensor (n x s), got {type(b).__name__}")
    if b.dim() != 2:
        raise checks.GifLiteError(
            f"{name} must be a 2-D block of right-hand sides (n x s), got shape {tuple(b.shape)}"
        )
    if not b.is_floating_point():
        raise checks.GifLiteTypeError(f"{name} must be a floating tensor, got {b.dtype}")
    if not bool(torch.isfinite(b).all()):
        raise checks.GifLiteError(f"{name} holds NaN or infinite entries")
    _check_tol(tol, 1 if max_iter is None else max_iter)
    return b


def _column_scale(b: torch.Tensor) -> torch.Tensor:
    norms = b.norm(dim=0)
    return torch.where(norms > 0, norms, torch.ones_like(norms))


def _orthonormal(z: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the columns of ``z`` (each normalised first), dropping numerically dependent ones."""
    norms = z.norm(dim=0)
    z = z[:, norms > 0] / norms[norms > 0]
    if z.shape[1] == 0:
        return z
    u, sv, _ = torch.linalg.svd(z, full_matrices=False)
    return u[:, sv > sv[0] * math.sqrt(torch.finfo(z.dtype).eps)]


def block_cg(
    matmat: MatMat, b: torch.Tensor, *, tol: float = 1e-8, max_iter: int | None = None
) -> SolveResult:
    """Block conjugate gradients (O'Leary 1980) for symmetric positive definite ``A`` and ``A X = B``.

    All columns share one block Krylov space ``span{B, AB, A^2 B, ...}``: each iteration multiplies ``A`` by
    a block ``P`` of search directions and gives every column the best ``A``-norm update from it,
    ``alpha = (P^T A P)^-1 P^T R``; the next block is the remaining residuals made ``A``-conjugate to ``P``,
    ``P' = orth(R - P (P^T A P)^-1 (A P)^T R)``.  With ``s`` columns, exact arithmetic needs at most about
    ``n / s`` iterations.  Converged columns and numerically dependent directions are dropped from the next
    block (deflation), so the block shrinks as columns converge.
    """
    b = _as_block(b, tol, max_iter, matmat)
    if b.dtype not in _FACTOR_DTYPES:
        raise checks.GifLiteError(_factor_dtype_message(b.dtype).replace("solver='direct'", "block CG"))
    n = b.shape[0]
    max_iter = max_iter or 10 * n
    _check_tol(tol, max_iter)
    scale = _column_scale(b)
    x, r = torch.zeros_like(b), b.clone()
    rel = r.norm(dim=0) / scale
    p = _orthonormal(r[:, rel > tol])
    history, it, products, hint = [float(rel.max())], 0, 0, ""
    stag = _Stagnation(max(_KRYLOV_WINDOW, n), tol, max_iter, b.dtype)
    stag.update(history[0])
    while it < max_iter and p.shape[1] > 0:
        q = matmat(p)
        products += p.shape[1]
        ptq = 0.5 * (p.T @ q + q.T @ p)
        chol, info = torch.linalg.cholesky_ex(ptq)
        if int(info) != 0:
            hint = "block CG met non-positive curvature: the matrix is not positive definite; use 'minres'."
            break
        alpha = torch.cholesky_solve(p.T @ r, chol)
        x += p @ alpha
        r -= q @ alpha
        it += 1
        rel = r.norm(dim=0) / scale
        history.append(float(rel.max()))
        active = rel > tol
        if not bool(active.any()):
            break
        if stag.update(history[-1]):
            hint = stag.hint("block CG")
            break
        z = r[:, active]
        p = _orthonormal(z - p @ torch.cholesky_solve(q.T @ z, chol))
    res = float(((b - matmat(x)).norm(dim=0) / scale).max())
    result = SolveResult(x, it, res, res <= tol, history, products + b.shape[1])
    return _finish("block_cg", result, tol, hint)


def batched_minres(
    matmat: MatMat, b: torch.Tensor, *, tol: float = 1e-8, max_iter: int | None = None
) -> SolveResult:
    """MINRES for symmetric, possibly indefinite ``A`` and every column of ``B`` (n x s) at once.

    The recurrences of :func:`minres`, one Lanczos process per column (the scalars become length-``s``
    vectors), with one batched product ``A V`` per iteration over the columns not yet converged.  Each
    column gets exactly the iterate the single-vector solver would give it.
    """
    b = _as_block(b, tol, max_iter, matmat)
    n, s = b.shape
    max_iter = max_iter or 10 * n
    _check_tol(tol, max_iter)
    beta1 = b.norm(dim=0)
    scale = _column_scale(b)
    x = torch.zeros_like(b)
    v_prev, v = torch.zeros_like(b), b / scale
    w_prev2, w_prev = torch.zeros_like(b), torch.zeros_like(b)
    beta, eta = beta1.clone(), beta1.clone()
    ones, zeros = torch.ones_like(beta1), torch.zeros_like(beta1)
    c_prev2, c_prev, s_prev2, s_prev = ones.clone(), ones.clone(), zeros.clone(), zeros.clone()
    active = beta1 > 0
    history, it, products, hint = [float((beta1 / scale).max())], 0, 0, ""
    stag = _Stagnation(max(_KRYLOV_WINDOW, n), tol, max_iter, b.dtype)
    stag.update(history[0])
    while it < max_iter and bool(active.any()):
        idx = active.nonzero().squeeze(1)
        p = torch.zeros_like(b)
        p[:, idx] = matmat(v[:, idx])
        products += idx.numel()
        alpha = (v * p).sum(0)
        p = p - alpha * v - beta * v_prev
        beta_next = p.norm(dim=0)
        eps = s_prev2 * beta
        delta_bar = c_prev2 * beta
        delta = c_prev * delta_bar + s_prev * alpha
        gamma_bar = -s_prev * delta_bar + c_prev * alpha
        gamma = torch.hypot(gamma_bar, beta_next)
        ok = active & (gamma > 0)
        g_safe = torch.where(ok, gamma, ones)
        c, sn = torch.where(ok, gamma_bar / g_safe, ones), torch.where(ok, beta_next / g_safe, zeros)
        w = torch.where(ok, (v - delta * w_prev - eps * w_prev2) / g_safe, w_prev)
        x += torch.where(ok, c * eta, zeros) * w
        eta = torch.where(ok, -sn * eta, eta)
        it += 1
        rel = eta.abs() / scale
        history.append(float(rel.max()))
        active = ok & (rel > tol) & (beta_next > 0)
        if bool(active.any()) and stag.update(history[-1]):
            hint = stag.hint("MINRES")
            break
        b_safe = torch.where(beta_next > 0, beta_next, ones)
        v_prev, v = torch.where(active, v, v_prev), torch.where(active, p / b_safe, v)
        w_prev2, w_prev = torch.where(active, w_prev, w_prev2), torch.where(active, w, w_prev)
        c_prev2, c_prev = torch.where(active, c_prev, c_prev2), torch.where(active, c, c_prev)
        s_prev2, s_prev = torch.where(active, s_prev, s_prev2), torch.where(active, sn, s_prev)
        beta = torch.where(active, beta_next, beta)
    res = float(((b - matmat(x)).norm(dim=0) / scale).max())
    result = SolveResult(x, it, res, res <= tol, history, products + s)
    return _finish("batched_minres", result, tol, hint)


def batched_lsqr(
    matmat: MatMat,
    rmatmat: MatMat,
    b: torch.Tensor,
    *,
    tol: float = 1e-8,
    max_iter: int | None = None,
    reorthogonalize: bool | None = None,
) -> SolveResult:
    """LSQR for ``min ||A x_j - b_j||`` for every column ``b_j`` of ``B`` at once (minimum-norm solutions).

    The recurrences of :func:`lsqr`, one Golub-Kahan process per column, with one batched ``A V`` and one
    batched ``A^T U`` per iteration.  ``reorthogonalize`` keeps the left vectors ``u_k`` (length
    ``A.shape[0]``) and re-orthogonalises each new one against them; ``None`` turns it on when
    ``A.shape[0] <= 20,000`` (cheap when the rows are few, e.g. ``H[P,:]`` in attribution under GIF).
    ``residual`` is the largest ``||A^T r_j|| / ||A^T b_j||`` over the columns.
    """
    b = _as_block(b, tol, max_iter, matmat, rmatmat)
    _check_reorthogonalize(reorthogonalize)
    m, s = b.shape
    beta = b.norm(dim=0)
    ones, zeros = torch.ones_like(beta), torch.zeros_like(beta)
    u = b / torch.where(beta > 0, beta, ones)
    v = rmatmat(u)
    alpha = v.norm(dim=0)
    max_iter = max_iter or 10 * v.shape[0]
    _check_tol(tol, max_iter)
    v = v / torch.where(alpha > 0, alpha, ones)
    keep = reorthogonalize if reorthogonalize is not None else m <= 20_000
    basis = [u] if keep else []
    w, x = v.clone(), torch.zeros_like(v)
    phi_bar, rho_bar = beta.clone(), alpha.clone()
    normar0 = alpha * beta
    active = normar0 > 0
    n_safe = torch.where(active, normar0, ones)
    history, it, products, hint = [1.0 if bool(active.any()) else 0.0], 0, s, ""
    stag = _Stagnation(max(_KRYLOV_WINDOW, v.shape[0]), tol, max_iter, b.dtype)
    stag.update(history[0])
    while it < max_iter and bool(active.any()):
        u = matmat(v) - alpha * u
        if basis:
            stacked = torch.stack(basis)  # [k, m, s]
            for _ in range(2):
                u = u - (stacked * (stacked * u).sum(1, keepdim=True)).sum(0)
        beta = u.norm(dim=0)
        u = u / torch.where(beta > 0, beta, ones)
        if keep:
            basis.append(u)
        v = rmatmat(u) - beta * v
        alpha = v.norm(dim=0)
        v = v / torch.where(alpha > 0, alpha, ones)
        products += 2 * s
        rho = torch.hypot(rho_bar, beta)
        r_safe = torch.where(rho > 0, rho, ones)
        c, sn = rho_bar / r_safe, beta / r_safe
        theta = sn * alpha
        rho_bar = torch.where(active, -c * alpha, rho_bar)
        phi = c * phi_bar
        x += torch.where(active, phi / r_safe, zeros) * w
        phi_bar = torch.where(active, sn * phi_bar, phi_bar)
        w = torch.where(active, v - (theta / r_safe) * w, w)
        it += 1
        rel = torch.where(active, phi_bar * alpha * c.abs() / n_safe, zeros)
        history.append(float(rel.max()))
        active = active & (rel > tol) & (alpha > 0)
        if bool(active.any()) and stag.update(history[-1]):
            hint = stag.hint("LSQR")
            break
    r = b - matmat(x)
    atr, atb = rmatmat(r).norm(dim=0), rmatmat(b).norm(dim=0)
    res = float(torch.where(atb > 0, atr / torch.where(atb > 0, atb, ones), zeros).max())
    misfit = float((r.norm(dim=0) / _column_scale(b)).max())
    return _finish(
        "batched_lsqr", SolveResult(x, it, res, res <= tol, history, products + 3 * s, misfit), tol, hint
    )
