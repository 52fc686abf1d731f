"""Attribution (removal_effects, self_influence), its block solvers and the batched HVP.

Every score is checked against dense float64 linear algebra built independently of gif_lite (Hessian
from ``torch.autograd.functional.hessian``, per-example gradients from one backward pass each), and
the IF scores against leave-one-out retraining of L2-regularised logistic regression.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from helpers.fixtures import random_subset, rel_err
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

import gif_lite as gl
from gif_lite import solvers as S
from gif_lite.attribution import clear_cache
from gif_lite.train import train_lbfgs

TOL = 1e-6


# ------------------------------------------------------------------------------------ independent oracle
def oracle_hessian(obj: gl.Objective) -> torch.Tensor:
    model, (x, y) = obj.model, next(iter(obj.batches))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss(theta: torch.Tensor) -> torch.Tensor:
        parts, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            parts[name] = theta[start : start + shape.numel()].view(shape)
            start += shape.numel()
        return (
            F.cross_entropy(functional_call(model, parts, (x,)), y) + 0.5 * obj.weight_decay * theta @ theta
        )

    return torch.autograd.functional.hessian(loss, obj.theta())


def oracle_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    rows = []
    for i in range(x.shape[0]):
        grads = torch.autograd.grad(
            F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), list(model.parameters())
        )
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def oracle_scores(
    obj: gl.Objective, test: tuple[torch.Tensor, torch.Tensor], name: str, p: torch.Tensor | None
) -> torch.Tensor:
    """Dense ``S[j, i] = t_j . delta_i`` straight from the contract (delta_i for each estimator)."""
    h = oracle_hessian(obj)
    x, y = next(iter(obj.batches))
    n = x.shape[0]
    g = (oracle_grads(obj.model, x, y) + obj.weight_decay * obj.theta()) / (n - 1)  # n x k
    t = oracle_grads(obj.model, *test)
    if name == "IF":
        return t @ torch.linalg.solve(h, g.T)
    assert p is not None
    delta = {
        "FIF": lambda: torch.linalg.solve(h[p][:, p], g.T[p]),
        "PIF": lambda: torch.linalg.solve(h, g.T)[p],
        "GIF": lambda: torch.linalg.pinv(h[:, p]) @ g.T,
    }[name]()
    return t[:, p] @ delta


def oracle_self(obj: gl.Objective, name: str, p: torch.Tensor | None) -> torch.Tensor:
    x, y = next(iter(obj.batches))
    return torch.diagonal(oracle_scores(obj, (x, y), name, p))


@pytest.fixture
def test_points() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return torch.randn(9, 5, generator=gen, dtype=torch.float64), torch.arange(9) % 3


SOLVERS = {
    "IF": ("direct", "cg", "minres"),
    "FIF": ("direct", "cg", "minres"),
    "PIF": ("direct", "cg", "minres"),
    "GIF": ("direct", "lsqr"),
}
CASES = [
    (model, name, solver)
    for model in ("convex", "nonconvex")
    for name, solvers in SOLVERS.items()
    for solver in solvers
    if not (model == "nonconvex" and solver == "cg")  # CG needs a positive definite Hessian
]


@pytest.mark.parametrize(("model", "name", "solver"), CASES)
def test_removal_effects_match_dense_algebra(
    model: str,
    name: str,
    solver: str,
    test_points: tuple[torch.Tensor, torch.Tensor],
    request: pytest.FixtureRequest,
) -> None:
    obj: gl.Objective = request.getfixturevalue(model)
    p = None if name == "IF" else random_subset(obj.num_params, 12, seed=3)
    scores = gl.removal_effects(obj, test_points, subset=p, estimator=name, solver=solver, batch_size=32)
    assert scores.shape == (9, obj.num_examples)
    assert rel_err(scores, oracle_scores(obj, test_points, name, p)) <= TOL


@pytest.mark.parametrize(
    ("model", "name", "solver"), [c for c in CASES if c[2] in ("direct", "minres", "lsqr")]
)
def test_self_influence_matches_dense_algebra(
    model: str, name: str, solver: str, request: pytest.FixtureRequest
) -> None:
    obj: gl.Objective = request.getfixturevalue(model)
    p = None if name == "IF" else random_subset(obj.num_params, 12, seed=4)
    selfs = gl.self_influence(obj, subset=p, estimator=name, solver=solver, batch_size=120)
    assert selfs.shape == (obj.num_examples,)
    assert rel_err(selfs, oracle_self(obj, name, p)) <= TOL


def test_damping_enters_the_hessian(
    convex: gl.Objective, test_points: tuple[torch.Tensor, torch.Tensor]
) -> None:
    h = oracle_hessian(convex) + 0.3 * torch.eye(convex.num_params, dtype=torch.float64)
    x, y = next(iter(convex.batches))
    g = (oracle_grads(convex.model, x, y) + convex.weight_decay * convex.theta()) / (x.shape[0] - 1)
    want = oracle_grads(convex.model, *test_points) @ torch.linalg.solve(h, g.T)
    for solver in ("direct", "cg"):
        got = gl.removal_effects(convex, test_points, solver=solver, damping=0.3)
        assert rel_err(got, want) <= TOL


def test_example_gradients_chunks_agree_with_backward(convex: gl.Objective) -> None:
    x, y = next(iter(convex.batches))
    chunks = list(gl.example_gradients(convex, batch_size=7))
    assert [s for s, _ in chunks] == list(range(0, x.shape[0], 7))
    assert rel_err(torch.cat([g for _, g in chunks]), oracle_grads(convex.model, x, y)) <= 1e-12


# ------------------------------------------------------------------------------------ the dense cache
def test_dense_factorisation_is_built_once_and_dropped_when_parameters_move(
    convex: gl.Objective, test_points: tuple[torch.Tensor, torch.Tensor]
) -> None:
    clear_cache(convex)
    start = convex.hvp_calls
    first = gl.removal_effects(convex, test_points, solver="direct")
    built = convex.hvp_calls - start
    assert built == convex.num_params  # one HVP per Hessian column
    again = gl.removal_effects(convex, test_points, solver="direct")
    gl.self_influence(convex, solver="direct")
    assert convex.hvp_calls - start == built  # reused, not rebuilt
    assert torch.equal(first, again)
    with torch.no_grad():
        next(convex.model.parameters()).add_(0.1)
    moved = gl.removal_effects(convex, test_points, solver="direct")
    assert convex.hvp_calls - start == 2 * built
    assert rel_err(moved, oracle_scores(convex, test_points, "IF", None)) <= TOL


# ------------------------------------------------------------------------------------ leave-one-out retraining
def test_influence_predicts_leave_one_out_retraining_of_logistic_regression() -> None:
    gen = torch.Generator().manual_seed(0)
    n, d, k, wd = 80, 4, 3, 0.05
    y = torch.arange(n) % k
    centers = 1.5 * torch.randn(k, d, generator=gen, dtype=torch.float64)
    x = centers[y] + torch.randn(n, d, generator=gen, dtype=torch.float64)
    yt = torch.arange(60) % k
    xt = centers[yt] + torch.randn(60, d, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    model = nn.Linear(d, k).double()
    assert train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=wd, tol=1e-9, progress=False).converged
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=wd)
    predicted = gl.removal_effects(obj, (xt, yt)).mean(0)  # change of the mean test loss
    with torch.no_grad():
        base = float(F.cross_entropy(model(xt), yt))
    actual = []
    removed = list(range(0, n, 2))  # 40 examples
    keep = torch.ones(n, dtype=torch.bool)
    for i in removed:
        keep[:] = True
        keep[i] = False
        retrained = copy.deepcopy(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gl.train.TrainingWarning)
            train_lbfgs(
                retrained, F.cross_entropy, (x[keep], y[keep]), weight_decay=wd, tol=1e-9, progress=False
            )
        with torch.no_grad():
            actual.append(float(F.cross_entropy(retrained(xt), yt)) - base)
    pred = predicted[removed]
    act = torch.tensor(actual, dtype=torch.float64)
    pearson = float(torch.corrcoef(torch.stack([pred, act]))[0, 1])
    assert pearson >= 0.97, pearson
    assert float(act.abs().max()) > 1e-4  # the removals change something measurable


# ------------------------------------------------------------------------------------ batched HVP
@pytest.mark.parametrize("method", gl.HVP_METHODS)
@pytest.mark.parametrize("rows", [5, 2 * gl.HESSIAN_CHUNK + 3])  # one pass; several, the last one short
def test_hvp_batch_equals_dense_hessian_times_block(nonconvex: gl.Objective, method: str, rows: int) -> None:
    obj = gl.Objective(nonconvex.model, F.cross_entropy, nonconvex.batches, 0.01, hvp_method=method)  # type: ignore[arg-type]
    vs = torch.randn(rows, obj.num_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = obj.hvp_calls
    out = obj.hvp_batch(vs)
    assert obj.hvp_calls == calls + rows
    assert rel_err(out, vs @ oracle_hessian(obj)) <= 1e-12


def test_hvp_batch_rejects_a_vector(convex: gl.Objective) -> None:
    with pytest.raises(ValueError, match=r"vs must be a 2-D tensor of shape \(s, 18\)"):
        convex.hvp_batch(torch.zeros(18, dtype=torch.float64))


# ------------------------------------------------------------------------------------ block solvers
def _spd(n: int, cond: float, seed: int, indefinite: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    ev = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), n, dtype=torch.float64)
    if indefinite:
        ev = ev * torch.where(torch.arange(n) % 3 == 0, -1.0, 1.0).double()
    return q @ torch.diag(ev) @ q.T


@pytest.mark.parametrize("s", [1, 4, 16])
def test_block_cg_solves_spd_systems_in_fewer_iterations_than_cg(s: int) -> None:
    a = _spd(80, 1e3, seed=s)
    b = torch.randn(80, s, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = S.block_cg(lambda v: a @ v, b, tol=1e-10)
    want = torch.from_numpy(__import__("numpy").linalg.solve(a.numpy(), b.numpy()))
    assert res.converged and rel_err(res.x, want) <= 1e-8
    single = S.cg(lambda v: a @ v, b[:, 0], tol=1e-10)
    assert res.iterations <= 1.1 * single.iterations  # s = 1 is CG, up to rounding
    if s == 16:
        assert res.iterations < single.iterations / 2  # shared search directions pay off


def test_block_cg_handles_dependent_columns_and_zero_columns() -> None:
    a = _spd(40, 100.0, seed=0)
    b = torch.randn(40, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    b = torch.cat([b, 2 * b[:, :1], torch.zeros(40, 1, dtype=torch.float64)], dim=1)
    res = S.block_cg(lambda v: a @ v, b, tol=1e-10)
    assert res.converged and rel_err(res.x, torch.linalg.solve(a, b)) <= 1e-8
    assert torch.equal(res.x[:, -1], torch.zeros(40, dtype=torch.float64))


def test_block_cg_warns_on_an_indefinite_matrix() -> None:
    a = _spd(30, 10.0, seed=0, indefinite=True)
    b = torch.randn(30, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with pytest.warns(gl.ConvergenceWarning, match="not positive definite"):
        S.block_cg(lambda v: a @ v, b, tol=1e-10)


def test_batched_minres_matches_numpy_on_indefinite_systems_and_the_single_solver() -> None:
    import numpy as np

    a = _spd(60, 100.0, seed=3, indefinite=True)
    b = torch.randn(60, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    res = S.batched_minres(lambda v: a @ v, b, tol=1e-10)
    assert res.converged
    assert rel_err(res.x, torch.from_numpy(np.linalg.solve(a.numpy(), b.numpy()))) <= 1e-8
    for j in (0, 3):  # each column follows the single-vector recurrences
        one = S.minres(lambda v: a @ v, b[:, j], tol=1e-10)
        assert rel_err(res.x[:, j], one.x) <= 1e-8


def test_batched_lsqr_gives_minimum_norm_least_squares_solutions() -> None:
    import numpy as np

    gen = torch.Generator().manual_seed(5)
    for shape in ((12, 40), (40, 12)):  # under- and over-determined
        m = torch.randn(*shape, generator=gen, dtype=torch.float64)
        b = torch.randn(shape[0], 4, generator=gen, dtype=torch.float64)
        res = S.batched_lsqr(m.__matmul__, m.T.__matmul__, b, tol=1e-12)
        assert rel_err(res.x, torch.from_numpy(np.linalg.pinv(m.numpy()) @ b.numpy())) <= 1e-8


# ------------------------------------------------------------------------------------ bad input
def test_bad_input_is_named(convex: gl.Objective, test_points: tuple[torch.Tensor, torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="needs a subset"):
        gl.removal_effects(convex, test_points, estimator="GIF")
    with pytest.raises(ValueError, match="drop subset"):
        gl.removal_effects(convex, test_points, subset=[0, 1])
    with pytest.raises(ValueError, match="unknown estimator 'TracIn'"):
        gl.removal_effects(convex, test_points, estimator="TracIn")
    with pytest.raises(ValueError, match="unknown solver 'cg' for estimator 'GIF'"):
        gl.self_influence(convex, subset=[0, 1], estimator="GIF", solver="cg")
    with pytest.raises(TypeError, match="test must be an"):
        gl.removal_effects(convex, test_points[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"test's inputs and targets disagree on batch size"):
        gl.removal_effects(convex, (test_points[0], test_points[1][:3]))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        gl.self_influence(convex, batch_size=0)
    with pytest.raises(ValueError, match="damping must be"):
        gl.self_influence(convex, damping=-1.0)
    with pytest.raises(TypeError, match=r"obj must be a gif_lite\.Objective"):
        gl.self_influence(convex.model)  # type: ignore[arg-type]


def test_dense_factorisations_follow_buffer_writes(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The factorisations live in the objective's state cache: an eval-mode BatchNorm whose statistics
    are rewritten gets new scores, equal to a fresh objective's, and ``clear_cache()`` drops them all."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 3)).double().eval()
    obj = gl.Objective(model, F.cross_entropy, data, weight_decay=1e-2)
    test = (data[0][:4], data[1][:4])
    before = gl.removal_effects(obj, test, solver="direct")
    with torch.no_grad():
        model[1].running_var.mul_(4.0)
    after = gl.removal_effects(obj, test, solver="direct")
    fresh = gl.removal_effects(gl.Objective(model, F.cross_entropy, data, weight_decay=1e-2), test)
    assert not torch.allclose(before, after) and rel_err(after, fresh) <= TOL
    start = obj.hvp_calls
    clear_cache()
    gl.removal_effects(obj, test, solver="direct")
    assert obj.hvp_calls - start == obj.num_params  # rebuilt


def test_the_per_example_removal_target_is_the_removal_problems_at_m_equal_1(
    convex: gl.Objective, test_points: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """One home for the removal right-hand side: attribution's ``g_i`` is ``removal_problem``'s
    ``at_optimum`` target for the group ``{i}``, so a column of ``removal_effects`` is ``t_j . IF(g_i)``."""
    x, y = next(iter(convex.batches))
    scores = gl.removal_effects(convex, test_points, solver="direct")
    t = oracle_grads(convex.model, *test_points)
    for i in (0, 7):
        g = gl.removal_problem(
            convex.model, F.cross_entropy, (x, y), [i], convex.weight_decay, at_optimum=True
        ).g
        expect = t @ gl.influence(convex, g, solver="direct").delta
        assert rel_err(scores[:, i], expect) < 1e-10


def test_a_shuffled_loader_gives_the_columns_in_example_order(convex: gl.Objective) -> None:
    """The README accepts a shuffled DataLoader: attribution reads it in example order, so column ``i`` is
    training example ``i`` as with the plain tensors."""
    x, y = next(iter(convex.batches))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    shuffled = gl.Objective(convex.model, F.cross_entropy, loader, weight_decay=convex.weight_decay)
    test = (x[:4], y[:4])
    expect = gl.removal_effects(convex, test, solver="direct")
    assert rel_err(gl.removal_effects(shuffled, test, solver="direct"), expect) < 1e-10
    assert (
        rel_err(gl.self_influence(shuffled, solver="direct"), gl.self_influence(convex, solver="direct"))
        < 1e-10
    )
