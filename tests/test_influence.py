"""Every estimator x every applicable solver against the dense float64 formula, plus identities."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers.fixtures import random_subset, random_vector, rel_err
from torch import nn
from torch.nn import functional as F

import gif_lite as gl

ESTIMATORS = ("IF", "FIF", "PIF", "GIF")


def dense_answer(
    obj: gl.Objective, g: torch.Tensor, p: torch.Tensor, name: str, damping: float = 0.0
) -> torch.Tensor:
    h = obj.hessian() + damping * torch.eye(obj.num_params, dtype=torch.float64)
    return {
        "IF": lambda: torch.linalg.solve(h, g),
        "FIF": lambda: torch.linalg.solve(h[p][:, p], g[p]),
        "PIF": lambda: torch.linalg.solve(h, g)[p],
        "GIF": lambda: torch.linalg.pinv(h[:, p]) @ g,
    }[name]()


def estimate(
    obj: gl.Objective, g: torch.Tensor, p: torch.Tensor, name: str, **kw: object
) -> gl.InfluenceResult:
    if name == "IF":
        return gl.influence(obj, g, **kw)  # type: ignore[arg-type]
    fn = {"FIF": gl.frozen_influence, "PIF": gl.projected_influence, "GIF": gl.generalized_influence}[name]
    return fn(obj, g, p, **kw)  # type: ignore[arg-type]


# Exact solvers: relative error <= 1e-6 on both models (cg only where H is positive definite).
EXACT = [
    ("direct", ESTIMATORS, ("convex", "nonconvex")),
    ("minres", ("IF", "FIF", "PIF"), ("convex", "nonconvex")),
    ("cg", ("IF", "FIF", "PIF"), ("convex",)),
    ("lsqr", ESTIMATORS, ("convex", "nonconvex")),
]
CASES = [(s, e, m) for s, es, ms in EXACT for e in es for m in ms]


@pytest.mark.parametrize(("solver", "name", "model"), CASES)
def test_exact_solvers_match_dense_formula(
    solver: str, name: str, model: str, request: pytest.FixtureRequest
) -> None:
    obj: gl.Objective = request.getfixturevalue(model)
    g = random_vector(obj.num_params, 1)
    p = random_subset(obj.num_params, obj.num_params // 3, 2)
    res = estimate(obj, g, p, name, solver=solver, tol=1e-10, max_iter=2000)
    assert rel_err(res.delta, dense_answer(obj, g, p, name)) <= 1e-6
    assert res.converged and res.residual <= 1e-10
    assert res.delta.shape == ((obj.num_params,) if name == "IF" else p.shape)
    assert (res.subset is None) == (name == "IF")


@pytest.mark.parametrize("name", ["IF", "FIF", "PIF"])
def test_lissa_converges_on_positive_definite_hessian(convex: gl.Objective, name: str) -> None:
    """LiSSA (full-batch Neumann series) is looser: relative error <= 1e-5 at tol 1e-7."""
    g = random_vector(convex.num_params, 1)
    p = random_subset(convex.num_params, 6, 2)
    res = estimate(convex, g, p, name, solver="lissa", tol=1e-7, max_iter=50_000)
    assert res.converged
    assert rel_err(res.delta, dense_answer(convex, g, p, name)) <= 1e-5


def test_lissa_warns_and_fails_on_indefinite_hessian(nonconvex: gl.Objective) -> None:
    g = random_vector(nonconvex.num_params, 1)
    with pytest.warns(gl.ConvergenceWarning, match="diverged"):
        res = gl.influence(nonconvex, g, solver="lissa", max_iter=5000)
    assert not res.converged


def test_landweber_converges_slowly_where_it_converges(convex: gl.Objective) -> None:
    """The paper's iteration reaches the least-squares GIF, but needs thousands of steps (rel. error <= 1e-4)."""
    g = random_vector(convex.num_params, 1)
    p = random_subset(convex.num_params, 6, 2)
    res = gl.generalized_influence(convex, g, p, solver="landweber", tol=1e-6, max_iter=3000, step_tol=0.0)
    assert res.converged and res.iterations > 100
    assert rel_err(res.delta, dense_answer(convex, g, p, "GIF")) <= 1e-4
    lsqr = gl.generalized_influence(convex, g, p, tol=1e-6)
    assert lsqr.hvps < res.hvps / 10


def test_landweber_default_stops_unconverged_with_a_warning(nonconvex: gl.Objective) -> None:
    g = random_vector(nonconvex.num_params, 1)
    p = random_subset(nonconvex.num_params, 10, 2)
    with pytest.warns(gl.ConvergenceWarning, match="landweber"):
        res = gl.generalized_influence(nonconvex, g, p, solver="landweber")
    assert not res.converged and res.iterations <= 200
    assert rel_err(res.delta, dense_answer(nonconvex, g, p, "GIF")) > 1e-3


def test_damping_is_added_to_the_hessian(nonconvex: gl.Objective) -> None:
    g = random_vector(nonconvex.num_params, 1)
    p = random_subset(nonconvex.num_params, 12, 2)
    for name in ESTIMATORS:
        res = estimate(nonconvex, g, p, name, damping=0.3, tol=1e-10, max_iter=2000)
        assert rel_err(res.delta, dense_answer(nonconvex, g, p, name, damping=0.3)) <= 1e-6


def test_gif_with_every_parameter_is_if(nonconvex: gl.Objective) -> None:
    g = random_vector(nonconvex.num_params, 3)
    everything = torch.arange(nonconvex.num_params)
    gif = gl.generalized_influence(nonconvex, g, everything, tol=1e-10, max_iter=2000)
    full = gl.influence(nonconvex, g, tol=1e-10)
    assert rel_err(gif.delta, full.delta) <= 1e-6


class TwoHeads(nn.Module):
    """Two linear models on disjoint parameters: the Hessian is block diagonal."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(5, 3)
        self.b = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.a(x), torch.tanh(self.b(x))])


def test_gif_equals_fif_when_the_hessian_is_block_diagonal(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    model = TwoHeads().double()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out[0], y) + F.cross_entropy(out[1], y)

    obj = gl.Objective(model, loss, data, weight_decay=0.01)
    h = obj.hessian()
    block = torch.arange(18)  # every parameter of head a
    assert h[block][:, 18:].abs().max() == 0  # H[F,P] = 0
    g = random_vector(obj.num_params, 4)
    gif = gl.generalized_influence(obj, g, block, tol=1e-10)
    fif = gl.frozen_influence(obj, g, block, tol=1e-10)
    assert rel_err(gif.delta, fif.delta) <= 1e-8
    # and where H[F,P] != 0 they differ: GIF accounts for the fixed parameters, FIF does not
    mixed = torch.cat([torch.arange(9), torch.arange(18, 27)])
    assert (
        rel_err(
            gl.generalized_influence(obj, g, mixed, tol=1e-10).delta,
            gl.frozen_influence(obj, g, mixed, tol=1e-10).delta,
        )
        > 1e-3
    )


@pytest.mark.parametrize("name", ESTIMATORS)
def test_scaling_the_loss(name: str, data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Loss x c: H -> c H.  For a fixed g, delta -> delta / c; with g built from the same loss
    (g -> c g, as removal_problem does) delta is unchanged."""
    c = 7.0
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    base = gl.Objective(model, F.cross_entropy, data, weight_decay=0.02)
    scaled = gl.Objective(model, lambda o, y: c * F.cross_entropy(o, y), data, weight_decay=c * 0.02)
    g = random_vector(base.num_params, 5)
    p = random_subset(base.num_params, 10, 6)
    d0 = estimate(base, g, p, name, tol=1e-10, max_iter=2000).delta
    assert rel_err(estimate(scaled, g, p, name, tol=1e-10, max_iter=2000).delta, d0 / c) <= 1e-6
    assert rel_err(estimate(scaled, c * g, p, name, tol=1e-10, max_iter=2000).delta, d0) <= 1e-6


def test_result_reports_hvps_and_full_vector(convex: gl.Objective) -> None:
    g = random_vector(convex.num_params, 1)
    p = random_subset(convex.num_params, 5, 2)
    res = gl.generalized_influence(convex, g, p, tol=1e-10)
    assert (
        res.hvps == 2 * res.iterations + 3
    )  # one rmatvec to start, two per step, two for the final residual
    full = res.full(convex.num_params)
    assert torch.equal(full[p], res.delta) and full.count_nonzero() <= p.numel()


def test_unconverged_solve_warns(nonconvex: gl.Objective) -> None:
    g = random_vector(nonconvex.num_params, 1)
    with pytest.warns(gl.ConvergenceWarning, match="minres stopped after 2 iterations"):
        res = gl.influence(nonconvex, g, max_iter=2)
    assert not res.converged and res.residual > 1e-8


def test_cg_on_indefinite_hessian_says_use_minres(nonconvex: gl.Objective) -> None:
    g = random_vector(nonconvex.num_params, 1)
    with pytest.warns(gl.ConvergenceWarning, match="minres"):
        gl.influence(nonconvex, g, solver="cg")


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("subset", "match"),
    [
        (torch.tensor([], dtype=torch.long), "empty"),
        (torch.tensor([0, 999]), "range"),
        (torch.tensor([-1, 2]), "range"),
        (torch.tensor([1, 1, 2]), "duplicated"),
        (torch.tensor([0.0, 1.0]), "integer"),
        (torch.tensor([True, False]), "integer"),
        (torch.tensor([[0, 1]]), "1-D"),
    ],
)
def test_bad_subset(convex: gl.Objective, subset: torch.Tensor, match: str) -> None:
    g = random_vector(convex.num_params)
    for fn in (gl.frozen_influence, gl.projected_influence, gl.generalized_influence):
        with pytest.raises(ValueError, match=match):
            fn(convex, g, subset)


def test_bad_g_and_solver(convex: gl.Objective) -> None:
    p = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="length 18"):
        gl.influence(convex, torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        gl.influence(convex, torch.full((18,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="floating-point"):
        gl.influence(convex, torch.zeros(18, dtype=torch.long))
    with pytest.raises(ValueError, match=r"unknown solver 'newton'.*minres"):
        gl.influence(convex, random_vector(18), solver="newton")
    with pytest.raises(ValueError, match=r"unknown solver 'cg'.*lsqr"):
        gl.generalized_influence(convex, random_vector(18), p, solver="cg")
    with pytest.raises(ValueError, match="damping"):
        gl.influence(convex, random_vector(18), damping=-1.0)


def test_second_order_matches_its_formula(
    convex: gl.Objective, data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = data
    group = gl.Objective(convex.model, F.cross_entropy, (x[:30], y[:30]), weight_decay=convex.weight_decay)
    p = 30 / 120
    q = p / (1 - p)
    h, h_u, g_u = convex.hessian(), group.hessian(), group.gradient()
    x1 = torch.linalg.solve(h, g_u)
    expected = q * x1 + q * q * torch.linalg.solve(h, (h_u - h) @ x1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = gl.second_order_influence(convex, group, p, tol=1e-10)
    assert rel_err(res.delta, expected) <= 1e-8
    with pytest.raises(ValueError, match="fraction"):
        gl.second_order_influence(convex, group, 1.5)


def test_matrix_free_paths_never_form_a_dense_hessian() -> None:
    """200,200 parameters: a dense Hessian would need 160 GB, so these calls can only succeed matrix-free."""
    torch.manual_seed(0)
    model = nn.Linear(1000, 200)
    x, y = torch.randn(64, 1000), torch.randint(0, 200, (64,))
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=1e-2)
    g = torch.randn(obj.num_params)
    p = torch.arange(0, obj.num_params, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.ConvergenceWarning)
        for res in (
            gl.generalized_influence(obj, g, p, max_iter=5),
            gl.frozen_influence(obj, g, p, max_iter=5),
            gl.projected_influence(obj, g, p, max_iter=5),
            gl.influence(obj, g, solver="cg", max_iter=5),
        ):
            assert torch.isfinite(res.delta).all()
    with pytest.raises(MemoryError, match="GiB"):
        gl.influence(obj, g, solver="direct")


@pytest.mark.parametrize("solver", ["direct", "lsqr", "landweber"])
def test_gif_reports_the_share_of_g_it_cannot_cancel(nonconvex: gl.Objective, solver: str) -> None:
    g = random_vector(nonconvex.num_params, 1)
    p = random_subset(nonconvex.num_params, 10, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.ConvergenceWarning)
        res = gl.generalized_influence(nonconvex, g, p, solver=solver)
    h = nonconvex.hessian()
    expected = float((h[:, p] @ res.delta - g).norm() / g.norm())
    assert abs(res.misfit - expected) < 1e-10 and 0 < res.misfit < 1


def test_square_solves_report_misfit_equal_to_residual(convex: gl.Objective) -> None:
    g = random_vector(convex.num_params, 1)
    for solver in ("direct", "cg", "minres"):
        res = gl.influence(convex, g, solver=solver)
        assert res.misfit == res.residual


def test_direct_solves_share_one_hessian_per_parameter_value(
    data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """``solver="direct"`` builds the dense Hessian once; later solves (IF, FIF, GIF) reuse it until the
    parameters or buffers move.  A caller writing into a returned Hessian does not touch the cache."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    obj = gl.Objective(model, F.cross_entropy, data, weight_decay=1e-2)
    g, p = random_vector(obj.num_params, 3), random_subset(obj.num_params, 6, 2)
    first = gl.influence(obj, g, solver="direct")
    assert first.hvps == obj.num_params
    again = gl.influence(obj, g, solver="direct")
    assert again.hvps == 0 and torch.equal(again.delta, first.delta)
    for fn in (gl.frozen_influence, gl.generalized_influence):
        res = fn(obj, g, p, solver="direct")
        assert res.hvps == 0
        assert (
            rel_err(res.delta, dense_answer(obj, g, p, "FIF" if fn is gl.frozen_influence else "GIF")) < 1e-10
        )
    obj.hessian().zero_()
    assert torch.equal(gl.influence(obj, g, solver="direct").delta, first.delta)
    with torch.no_grad():
        model[0].weight.mul_(1.01)
    moved = gl.influence(obj, g, solver="direct")
    assert moved.hvps == obj.num_params and not torch.equal(moved.delta, first.delta)
    obj.release()
    assert gl.influence(obj, g, solver="direct").hvps == obj.num_params


def test_the_cached_hessian_follows_buffer_writes(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """An eval-mode BatchNorm's statistics are part of the function: changing them rebuilds the Hessian."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 3)).double().eval()
    obj = gl.Objective(model, F.cross_entropy, data, weight_decay=1e-2)
    before = obj.hessian()
    with torch.no_grad():
        model[1].running_var.mul_(4.0)
    after = obj.hessian()
    assert obj.hvp_calls == 2 * obj.num_params and not torch.allclose(before, after)
    fresh = gl.Objective(model, F.cross_entropy, data, weight_decay=1e-2).hessian()
    assert rel_err(after, fresh) < 1e-12


def test_estimators_never_serve_an_if_solve_computed_at_other_parameters(convex: gl.Objective) -> None:
    """The IF solve that PIF slices is cached on the objective's state cache: after the parameters change
    in place (here ``apply_update``), IF and PIF are solved afresh, not served from the old parameters."""
    obj = convex
    g = random_vector(obj.num_params, seed=3)
    p = random_subset(obj.num_params, 6, seed=3)
    est = gl.Estimators({"solver": "direct"})
    before = est("IF", obj, g)
    assert torch.equal(est("PIF", obj, g, p).delta, before.delta[p])  # cached while nothing changed
    gl.apply_update(obj.model, 0.3 * random_vector(obj.num_params, seed=4))
    fresh = gl.influence(obj, g, solver="direct").delta
    assert rel_err(before.delta, fresh) > 1e-3  # the parameters really moved the answer
    assert rel_err(est("IF", obj, g).delta, fresh) < 1e-12
    assert rel_err(est("PIF", obj, g, p).delta, fresh[p]) < 1e-12


def test_misfit_is_the_gif_residual_and_the_yardstick_of_any_update(nonconvex: gl.Objective) -> None:
    obj = nonconvex
    g = random_vector(obj.num_params, seed=5)
    p = random_subset(obj.num_params, 8, seed=5)
    gif = gl.generalized_influence(obj, g, p, solver="direct", damping=0.01)
    assert abs(gl.misfit(obj, g, gif.delta, p, damping=0.01) - gif.misfit) < 1e-10
    h = obj.hessian() + 0.01 * torch.eye(obj.num_params, dtype=torch.float64)
    full = torch.zeros(obj.num_params, dtype=torch.float64)
    full[p] = 2 * gif.delta
    assert abs(gl.misfit(obj, g, 2 * gif.delta, p, damping=0.01) - rel_err(h @ full, g)) < 1e-12
    assert gl.misfit(obj, g, torch.zeros(obj.num_params, dtype=torch.float64)) == 1.0
    with pytest.raises(gl.GifLiteError, match="delta"):
        gl.misfit(obj, g, gif.delta)


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model[0].bias.requires_grad_(False)  # frozen parameters are not part of theta
    return model


def test_estimators_share_one_if_solve_between_if_and_every_pif() -> None:
    model = _small_model().double()
    x, y = torch.randn(30, 3, dtype=torch.float64), torch.randint(0, 2, (30,))
    problem = gl.removal_problem(model, F.cross_entropy, (x, y), torch.tensor([0, 1, 2]), weight_decay=0.1)
    obj, g = problem.objective, problem.g
    est = gl.Estimators({"solver": "minres", "tol": 1e-12})
    full = est("IF", obj, g)
    calls = obj.hvp_calls
    for p in (torch.tensor([0, 3]), torch.tensor([5, 9, 21])):
        pif = est("PIF", obj, g, p)
        assert torch.equal(pif.delta, full.delta[p]) and torch.equal(pif.subset, p)
    assert obj.hvp_calls == calls  # no new solve
    direct = gl.projected_influence(obj, g, torch.tensor([5, 9, 21]), solver="direct")
    assert torch.allclose(est("PIF", obj, g, torch.tensor([5, 9, 21])).delta, direct.delta, atol=1e-9)
    assert set(gl.ESTIMATORS) == {"IF", "FIF", "PIF", "GIF"}
    with pytest.raises(ValueError, match="needs a parameter subset"):
        est("GIF", obj, g)
