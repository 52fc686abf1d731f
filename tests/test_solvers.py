"""Every solver of gif_lite.solvers on random operators, against scipy.sparse.linalg and numpy.linalg.

Three kinds of operator, float64, seeded: symmetric positive definite (``Q diag(mu) Q^T`` with
``mu`` in [0.5, 20]), symmetric indefinite (a few negative ``mu``) and rectangular (tall, full column
rank; and wide, where least squares has infinitely many solutions and the minimum-norm one is asked).
The reference answers come from ``numpy.linalg.solve`` / ``numpy.linalg.lstsq`` and from the same
algorithms in ``scipy.sparse.linalg`` (cg, minres, lsqr), so a wrong recurrence cannot hide behind
its own residual report.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.sparse import linalg as spla

import gif_lite as gl
from gif_lite import solvers as S

N = 40


def _spd(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * rng.uniform(0.5, 20.0, n)) @ q.T


def _indefinite(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    mu = rng.uniform(0.5, 20.0, n) * np.where(np.arange(n) % 4 == 0, -1.0, 1.0)
    return (q * mu) @ q.T


def _rect(seed: int, rows: int, cols: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols))


def _ops(
    a: np.ndarray,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    t = torch.from_numpy(a)
    return (lambda v: t @ v), (lambda v: t.T @ v)


def _b(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed + 1000).standard_normal(n)


def _close(x: torch.Tensor, ref: np.ndarray, rtol: float) -> None:
    err = np.linalg.norm(x.numpy() - ref) / np.linalg.norm(ref)
    assert err < rtol, f"relative error {err:.2e} > {rtol:.0e}"


# ------------------------------------------------------------------------------------------ square, SPD
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["direct", "cg", "minres", "lissa"])
def test_square_solvers_on_positive_definite(name: str, seed: int) -> None:
    a, b = _spd(seed), _b(seed, N)
    ref = np.linalg.solve(a, b)
    matvec, _ = _ops(a)
    bt = torch.from_numpy(b)
    if name == "direct":
        res = S.direct(torch.from_numpy(a), bt)
    elif name == "lissa":
        res = S.lissa(matvec, bt, scale=0.6 * 20.0, tol=1e-10, max_iter=20_000)
    else:
        res = getattr(S, name)(matvec, bt, tol=1e-12)
    assert res.converged
    _close(res.x, ref, 1e-8)
    if name in ("cg", "minres"):  # the same Krylov method in scipy reaches the same answer
        sp = getattr(spla, name)(a, b, rtol=1e-12, maxiter=10 * N)[0]
        _close(res.x, sp, 1e-8)
        assert res.iterations <= N + 5  # exact arithmetic needs at most n steps


@pytest.mark.parametrize("name", ["lsqr", "landweber"])
def test_least_squares_solvers_solve_square_positive_definite_systems(name: str) -> None:
    a, b = _spd(2), _b(2, N)
    matvec, rmatvec = _ops(a)
    if name == "lsqr":
        res = S.lsqr(matvec, rmatvec, torch.from_numpy(b), tol=1e-13)
        _close(res.x, np.linalg.solve(a, b), 1e-8)
    else:  # Landweber converges like kappa^2: a well-conditioned matrix and the paper's step test
        a = np.eye(N) * 3.0 + 0.1 * _spd(3) / 20.0
        matvec, rmatvec = _ops(a)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", S.ConvergenceWarning)
            res = S.landweber(
                matvec, rmatvec, torch.from_numpy(b), normalizer=4.0, max_iter=2000, step_tol=1e-14
            )
        _close(res.x, np.linalg.solve(a, b), 1e-8)


# ------------------------------------------------------------------------------------------ indefinite
@pytest.mark.parametrize("seed", [0, 1])
def test_minres_and_direct_on_indefinite_systems_match_numpy_and_scipy(seed: int) -> None:
    a, b = _indefinite(seed), _b(seed, N)
    ref = np.linalg.solve(a, b)
    matvec, rmatvec = _ops(a)
    bt = torch.from_numpy(b)
    _close(S.direct(torch.from_numpy(a), bt).x, ref, 1e-10)
    res = S.minres(matvec, bt, tol=1e-12)
    assert res.converged
    _close(res.x, ref, 1e-8)
    _close(res.x, spla.minres(a, b, rtol=1e-12, maxiter=10 * N)[0], 1e-7)
    _close(S.lsqr(matvec, rmatvec, bt, tol=1e-13).x, ref, 1e-7)  # least squares of a nonsingular system


def test_cg_and_lissa_report_failure_on_indefinite_systems() -> None:
    """CG and LiSSA assume positive definiteness: on an indefinite matrix they must not claim success."""
    a, b = _indefinite(4), _b(4, N)
    matvec, _ = _ops(a)
    bt = torch.from_numpy(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", S.ConvergenceWarning)
        try:
            cg = S.cg(matvec, bt, tol=1e-10)
        except (ValueError, FloatingPointError):
            cg = None
        try:
            lissa = S.lissa(matvec, bt, scale=12.0, tol=1e-10, max_iter=300)
        except (ValueError, FloatingPointError):
            lissa = None
    assert cg is None or not cg.converged
    assert lissa is None or not lissa.converged


# ------------------------------------------------------------------------------------------ rectangular
@pytest.mark.parametrize(("rows", "cols"), [(60, 25), (25, 60)])
@pytest.mark.parametrize("name", ["direct", "lsqr", "landweber"])
def test_least_squares_on_rectangular_operators(name: str, rows: int, cols: int) -> None:
    """Tall: the least-squares solution; wide: the minimum-norm solution (both ``pinv(A) b``)."""
    a = _rect(rows * cols, rows, cols)
    if name == "landweber":
        a = a / np.linalg.norm(a, 2)  # sigma_max = 1, so normalizer 1.1 converges
    b = _b(rows, rows)
    ref = np.linalg.lstsq(a, b, rcond=None)[0]
    matvec, rmatvec = _ops(a)
    bt = torch.from_numpy(b)
    if name == "direct":
        res = S.direct(torch.from_numpy(a), bt, least_squares=True)
        _close(res.x, ref, 1e-10)
        return
    if name == "lsqr":
        res = S.lsqr(matvec, rmatvec, bt, tol=1e-13)
        _close(res.x, ref, 1e-8)
        sp = spla.lsqr(a, b, atol=1e-14, btol=1e-14, iter_lim=20 * max(rows, cols))[0]
        _close(res.x, sp, 1e-7)
        return
    sigma_min = np.linalg.svd(a, compute_uv=False).min()
    steps = int(40 / sigma_min**2)  # error shrinks like (1 - sigma_min^2 / c^2)^k
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", S.ConvergenceWarning)
        res = S.landweber(matvec, rmatvec, bt, normalizer=1.1, max_iter=steps, step_tol=0.0)
    _close(res.x, ref, 1e-5)


def test_solvers_report_the_residual_they_reach() -> None:
    """``residual`` is ||b - A x|| / ||b|| for square solvers and ||A^T r|| / ||A^T b|| for least squares."""
    a, b = _spd(5), _b(5, N)
    matvec, _ = _ops(a)
    bt = torch.from_numpy(b)
    with pytest.warns(S.ConvergenceWarning, match="minres stopped after 4 iterations"):
        res = S.minres(matvec, bt, tol=1e-3, max_iter=4)
    assert not res.converged
    true = np.linalg.norm(b - a @ res.x.numpy()) / np.linalg.norm(b)
    assert res.residual == pytest.approx(true, rel=1e-10)
    tall = _rect(7, 50, 20)
    mv, rmv = _ops(tall)
    bb = _b(7, 50)
    ls = S.lsqr(mv, rmv, torch.from_numpy(bb), tol=1e-12)
    r = bb - tall @ ls.x.numpy()
    assert ls.residual == pytest.approx(np.linalg.norm(tall.T @ r) / np.linalg.norm(tall.T @ bb), abs=1e-12)
    assert ls.misfit == pytest.approx(np.linalg.norm(r) / np.linalg.norm(bb), rel=1e-8)


@pytest.mark.parametrize("name", ["cg", "minres", "lissa"])
def test_a_zero_right_hand_side_gives_zero_at_once(name: str) -> None:
    matvec, _ = _ops(_spd(6))
    res = getattr(S, name)(matvec, torch.zeros(N, dtype=torch.float64), tol=1e-8)
    assert res.converged and res.iterations == 0 and not res.x.any()


# ------------------------------------------------------------------------------------------ block solvers
_BLOCK = [name for name in ("block_cg", "batched_minres", "batched_lsqr") if hasattr(S, name)]


@pytest.mark.parametrize("name", _BLOCK)
def test_block_solvers_match_numpy_column_by_column(name: str) -> None:
    a = _spd(8) if name == "block_cg" else _indefinite(8)
    bs = np.stack([_b(s, N) for s in range(4)], axis=1)
    ref = np.linalg.solve(a, bs)
    t = torch.from_numpy(a)
    bt = torch.from_numpy(bs)
    if name == "batched_lsqr":
        res = S.batched_lsqr(lambda v: t @ v, lambda v: t.T @ v, bt, tol=1e-13)
    else:
        res = getattr(S, name)(lambda v: t @ v, bt, tol=1e-12)
    for j in range(bs.shape[1]):
        _close(res.x[:, j], ref[:, j], 1e-7)


# ------------------------------------------------------------------------------------------ the paper's restarts
def _paper_landweber(
    a: np.ndarray, b: np.ndarray, c: float, step: float, max_iter: int, step_tol: float
) -> tuple[np.ndarray, float, int, int]:
    """The paper's loop as its code runs it: every restart recomputes ``A^T b`` and iterates from scratch.

    Returns ``x``, the final normalizer, the restarts and the products spent."""
    restarts, products = 0, 0
    threshold = step_tol * np.sqrt(a.shape[1])
    while True:
        x0 = a.T @ b / c**2
        products += 1
        x, diff_old, diverged = x0.copy(), np.inf, False
        for it in range(max_iter):
            x_new = x0 + x - a.T @ (a @ x) / c**2
            products += 2
            diff = np.linalg.norm(x_new - x)
            x = x_new
            if it % 2 == 0:
                if diff > diff_old or not np.isfinite(diff):
                    diverged = True
                    break
                diff_old = diff
            if diff <= threshold:
                break
        if not diverged:
            return x, c, restarts, products
        restarts, c = restarts + 1, c + step


@pytest.mark.parametrize(
    ("seed", "max_iter", "step_tol"), [(0, 30, 1e-9), (1, 30, 1e-9), (2, 200, 1e-4), (3, 4, 0.0)]
)
def test_landweber_restarts_as_the_paper_without_paying_for_doomed_ones(
    seed: int, max_iter: int, step_tol: float
) -> None:
    """From normalizer 1 with step 0.5, a matrix with sigma_max 60 needs about 80 restarts (c > 60 / sqrt 2).

    The paper's loop spends 7+ products on each; gif_lite must end at the same normalizer with the same
    iterate, but foresee the doomed restarts (a few real ones at most, near the threshold)."""
    a = _rect(seed, 50, 20)
    a *= 60.0 / np.linalg.norm(a, 2)
    b = _b(seed, 50)
    ref, c, restarts, products = _paper_landweber(a, b, 1.0, 0.5, max_iter, step_tol)
    assert restarts > 70 and products > 7 * restarts
    matvec, rmatvec = _ops(a)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", S.ConvergenceWarning)
        res = S.landweber(
            matvec, rmatvec, torch.from_numpy(b), max_iter=max_iter, step_tol=step_tol, max_restarts=1000
        )
    _close(res.x, ref, 1e-10)
    assert res.iterations <= max_iter and res.matvecs < products / 2
    (warned,) = caught  # unconverged (tol 1e-8): the note names the normalizer and the restarts
    note = re.search(r"normalizer (\S+) after (\d+) restarts, (\d+) of them foreseen", str(warned.message))
    assert note is not None and (float(note[1]), int(note[2])) == (c, restarts)
    assert int(note[3]) >= restarts - 4  # only the last few, near sigma_max / sqrt(2), are run


def test_landweber_still_refuses_to_restart_forever() -> None:
    a = _rect(5, 30, 10)
    a *= 1e4 / np.linalg.norm(a, 2)
    matvec, rmatvec = _ops(a)
    with pytest.raises(FloatingPointError, match="max_restarts"):
        S.landweber(matvec, rmatvec, torch.from_numpy(_b(5, 30)), max_iter=30, max_restarts=50)


def test_block_solvers_refuse_bad_input_with_gif_lite_errors_before_any_product() -> None:
    calls: list[int] = []

    def matmat(v: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return v

    good = torch.ones(4, 2, dtype=torch.float64)
    for solve, maps in (
        (S.block_cg, (matmat,)),
        (S.batched_minres, (matmat,)),
        (S.batched_lsqr, (matmat, matmat)),
    ):
        with pytest.raises(gl.GifLiteError, match="2-D block"):
            solve(*maps, torch.ones(4, dtype=torch.float64))
        with pytest.raises(gl.GifLiteTypeError, match="floating"):
            solve(*maps, torch.ones(4, 2, dtype=torch.long))
        with pytest.raises(gl.GifLiteError, match="NaN"):
            solve(*maps, torch.full((4, 2), float("nan"), dtype=torch.float64))
        with pytest.raises(gl.GifLiteError, match="tol"):
            solve(*maps, good, tol=-1.0)
        with pytest.raises(gl.GifLiteError, match="max_iter"):
            solve(*maps, good, max_iter=0)
        with pytest.raises(gl.GifLiteTypeError, match="callables"):
            solve(*(None for _ in maps), good)
    assert not calls


# ------------------------------------------------------------------------------------------ stagnation
def _float32_spd(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(_spd(seed)).float(), torch.from_numpy(_b(seed, N)).float()


def test_lissa_below_float32s_reach_stops_on_stagnation_naming_the_floor() -> None:
    """A tolerance float32 cannot meet: LiSSA stops within a few hundred steps, not at max_iter = 10^7."""
    a, b = _float32_spd()
    with pytest.warns(S.ConvergenceWarning, match=r"Stagnated.*float32's rounding floor.*eps") as rec:
        res = S.lissa(lambda v: a @ v, b, tol=1e-12, max_iter=10**7)
    assert not res.converged and res.iterations < 2_000
    assert res.residual < 1e-5  # it did reach the floor first
    assert len([w for w in rec if issubclass(w.category, S.ConvergenceWarning)]) == 1


@pytest.mark.parametrize("name", ["minres", "batched_minres"])
def test_minres_on_an_inconsistent_singular_system_stops_naming_conditioning(name: str) -> None:
    """``b`` outside the range of a singular ``A``: the residual cannot fall, so the solve stops early."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    mu = np.r_[np.zeros(5), rng.uniform(0.5, 20.0, N - 5)]
    a = torch.from_numpy((q * mu) @ q.T)
    b = torch.from_numpy(rng.standard_normal(N))
    b = b if name == "minres" else torch.stack([b, 2 * b + 1], 1)
    with pytest.warns(S.ConvergenceWarning, match="ill-conditioned or singular"):
        res = getattr(S, name)(lambda v: a @ v, b, tol=1e-10, max_iter=10**6)
    assert not res.converged and res.iterations < 5_000


@pytest.mark.parametrize(
    "name", ["cg", "minres", "lissa", "lsqr", "block_cg", "batched_minres", "batched_lsqr"]
)
def test_stagnation_never_changes_a_converging_solve(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A solve that meets ``tol`` gives bit-identical answers with the stagnation test switched off."""
    a = torch.from_numpy(_spd(11) if name in ("cg", "lissa", "block_cg") else _indefinite(11))
    b = torch.from_numpy(_b(11, N))
    block = torch.stack([b, b.flip(0)], 1)
    calls = {
        "cg": lambda: S.cg(lambda v: a @ v, b, tol=1e-12),
        "minres": lambda: S.minres(lambda v: a @ v, b, tol=1e-12),
        "lissa": lambda: S.lissa(lambda v: a @ v, b, tol=1e-10, max_iter=100_000),
        "lsqr": lambda: S.lsqr(lambda v: a @ v, lambda v: a @ v, b, tol=1e-12),
        "block_cg": lambda: S.block_cg(lambda v: a @ v, block, tol=1e-12),
        "batched_minres": lambda: S.batched_minres(lambda v: a @ v, block, tol=1e-12),
        "batched_lsqr": lambda: S.batched_lsqr(lambda v: a @ v, lambda v: a @ v, block, tol=1e-12),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", S.ConvergenceWarning)
        on = calls[name]()
        monkeypatch.setattr(S._Stagnation, "update", lambda self, value: False)
        off = calls[name]()
    assert on.converged and torch.equal(on.x, off.x) and on.iterations == off.iterations


def test_the_stagnation_rule_waits_for_a_slow_but_steady_run() -> None:
    """LiSSA at rate 1 - 1e-3 gains under 10% per 50 steps, yet runs on: its residual falls every step."""
    a = torch.linspace(1e-3, 1.0, N, dtype=torch.float64)
    b = torch.ones(N, dtype=torch.float64)
    with pytest.warns(S.ConvergenceWarning, match="stopped after 3000 iterations") as rec:
        res = S.lissa(lambda v: a * v, b, scale=1.0, tol=1e-12, max_iter=3_000)
    assert not res.converged and not any("Stagnated" in str(w.message) for w in rec)
    res = S.lissa(lambda v: a * v, b, scale=1.0, tol=1e-6, max_iter=100_000)
    assert res.converged  # the same slow run meets a reachable tolerance


def test_direct_reports_an_unmet_residual_instead_of_success() -> None:
    """A singular matrix that LU does not flag: ``converged`` follows the residual, and a warning names it."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    mu = np.r_[np.zeros(3), rng.uniform(0.5, 20.0, N - 3)]
    for dtype in (torch.float64, torch.float32):
        a = torch.from_numpy((q * mu) @ q.T).to(dtype)
        b = torch.from_numpy(rng.standard_normal(N)).to(dtype)
        with pytest.warns(S.ConvergenceWarning, match="direct solved with relative residual.*singular"):
            res = S.direct(a, b)
        assert not res.converged and res.residual > 0.1
    good = torch.from_numpy(_spd(1))
    res = S.direct(good, torch.from_numpy(_b(1, N)), tol=1e-12)
    assert res.converged and res.residual <= 1e-12
    with pytest.raises(gl.GifLiteError, match="tol"):
        S.direct(good, torch.from_numpy(_b(1, N)), tol=0.0)


def test_landweber_at_the_floor_says_so_when_it_gives_up() -> None:
    rect = torch.from_numpy(_rect(2, 60, 20)).float()
    b = torch.from_numpy(_b(2, 60)).float()
    with pytest.raises(FloatingPointError, match="rounding floor"):
        S.landweber(
            lambda v: rect @ v, lambda u: rect.T @ u, b, max_iter=10**6, step_tol=0.0, normalizer=20.0
        )
