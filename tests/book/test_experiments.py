"""Tests of gif_lite.book.experiments: scores, distances, the step search, the method loop, paper configs."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book import experiments as ex


def _data(n: int = 120, d: int = 6, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = (x[:, :k] + 0.3 * torch.randn(n, k, generator=gen, dtype=torch.float64)).argmax(dim=1)
    return x, y


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def test_one_f1_and_one_step_search_in_gif_lite() -> None:
    """Each is defined once (here); the backdoor chapter's are this module's, Table 3's settings bound."""
    from gif_lite.book import backdoor as bd

    defined = [
        (path.name, node.name)
        for path in sorted(Path(gl.__file__).parent.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name in ("f1", "paper_step_search")
    ]
    assert sorted(defined) == [("experiments.py", "f1"), ("experiments.py", "paper_step_search")]
    assert bd.f1 is ex.f1 and bd.paper_step_search.func is ex.paper_step_search
    assert (
        bd.paper_step_search.keywords["patience"] == 10 and bd.paper_step_search.keywords["max_steps"] == 300
    )
    assert ex.f1(0.0, 0.0) == 0.0 and math.isclose(ex.f1(0.5, 1.0), 2 / 3)


def test_removal_f1_values() -> None:
    assert ex.removal_f1(0.0, 1.0) == 1.0
    assert ex.removal_f1(1.0, 0.0) == 0.0
    assert ex.removal_f1(1.0, 1.0) == 0.0
    assert math.isclose(ex.removal_f1(0.2, 0.6), 2 * 0.8 * 0.6 / 1.4)
    with pytest.raises(ValueError):
        ex.removal_f1(1.2, 0.5)


def test_removal_scores_match_evaluate() -> None:
    x, y = _data()
    model = _model()
    s = ex.removal_scores(model, (x, y), [0])
    pred = model(x).argmax(dim=1)
    assert math.isclose(s["acc_removed"], float((pred[y == 0] == 0).double().mean()))
    assert math.isclose(s["acc_rest"], float((pred[y != 0] == y[y != 0]).double().mean()))
    assert math.isclose(s["f1"], ex.removal_f1(s["acc_removed"], s["acc_rest"]))


def test_agreement_and_kl() -> None:
    x, _ = _data()
    a, b = _model(0), _model(1)
    assert ex.prediction_agreement(a, a, x) == 1.0
    assert abs(ex.mean_kl(a, a, x)) < 1e-12
    assert ex.mean_kl(a, b, x) > 0
    pa, pb = F.softmax(a(x), 1).detach(), F.softmax(b(x), 1).detach()
    direct = float((pb * (pb.log() - pa.log())).sum(1).mean())  # KL(p_ref || p) with ref = b
    assert math.isclose(ex.mean_kl(a, b, x), direct, rel_tol=1e-9)
    agree = float((pa.argmax(1) == pb.argmax(1)).double().mean())
    assert ex.prediction_agreement(a, b, x) == agree


def test_scaled_update() -> None:
    d = torch.tensor([3.0, 4.0])
    assert torch.allclose(ex.scaled_update(d, 10.0), torch.tensor([6.0, 8.0]))
    assert torch.equal(ex.scaled_update(torch.zeros(2), 1.0), torch.zeros(2))


def test_apply_copy_leaves_model() -> None:
    model = _model()
    theta = gl.flat_params(model)
    p = torch.tensor([0, 3, 7])
    new = ex.apply_copy(model, torch.ones(3, dtype=torch.float64), p, scale=2.0)
    assert torch.equal(gl.flat_params(model), theta)
    diff = gl.flat_params(new) - theta
    assert torch.allclose(diff[p], torch.full((3,), 2.0, dtype=torch.float64))
    assert diff.abs().sum() == pytest.approx(6.0)


def test_best_step_picks_and_restores() -> None:
    model = _model()
    theta = gl.flat_params(model)
    p = torch.tensor([1, 2])
    delta = torch.tensor([1.0, 0.0], dtype=torch.float64)
    target = float(theta[1]) + 2.0  # the score peaks when theta[1] moved by exactly 2

    def score(m: nn.Module) -> float:
        return -abs(float(gl.flat_params(m)[1]) - target)

    step, best, table = ex.best_step(model, delta, p, [0.5, 1.0, 2.0, 4.0], score)
    assert step == 2.0 and best == pytest.approx(0.0, abs=1e-12)
    assert [r["step"] for r in table] == [0.5, 1.0, 2.0, 4.0]
    assert torch.equal(gl.flat_params(model), theta)


def test_best_step_restores_on_error() -> None:
    model = _model()
    theta = gl.flat_params(model)

    def boom(m: nn.Module) -> float:
        raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError):
        ex.best_step(model, torch.ones(theta.numel(), dtype=torch.float64), None, [1.0], boom)
    assert torch.equal(gl.flat_params(model), theta)
    with pytest.raises(ValueError):
        ex.best_step(model, torch.ones(theta.numel(), dtype=torch.float64), None, [], boom)


def test_compare_methods_rows() -> None:
    x, y = _data()
    model = _model()
    gl.train.train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=1e-2, tol=1e-8, max_iter=500)
    setup = ex.removal_setup(model, (x, y), [0], n_hessian=60, weight_decay=1e-2)
    theta = gl.flat_params(model)
    assert setup.model is model and setup.removed == (0,)
    rows = ex.compare_methods(
        setup, (x, y), (x, y), ratios=(0.2, 1.0), steps=(0.1, 1.0), max_iter=200, reference=model,
        methods=("GIF", "FIF", "PIF", "second-order", "gradient", "IF"),  # rows come in a fixed order
    )  # fmt: skip
    assert torch.equal(gl.flat_params(model), theta)
    assert [(r["method"], r["ratio"]) for r in rows] == [
        ("IF", 1.0), ("gradient", 1.0), ("second-order", 1.0), ("PIF", 0.2), ("FIF", 0.2), ("GIF", 0.2),
        ("PIF", 1.0), ("FIF", 1.0), ("GIF", 1.0),
    ]  # fmt: skip
    by = {(r["method"], r["ratio"]): r for r in rows}
    assert by[("gradient", 1.0)]["hvps"] == 0 and by[("gradient", 1.0)]["norm"] == pytest.approx(
        float(setup.g.norm())
    )
    for r in rows:
        assert r["step"] in (0.1, 1.0) and 0.0 <= r["val_f1"] <= 1.0 and 0.0 <= r["raw_agreement"] <= 1.0
    # at 100% of the parameters (no damping, converged) PIF, FIF and GIF are IF
    assert by[("GIF", 1.0)]["residual"] < 1e-4 and by[("IF", 1.0)]["residual"] < 1e-4
    assert by[("GIF", 0.2)]["residual"] <= by[("FIF", 0.2)]["residual"] + 1e-9  # GIF minimises it
    assert by[("GIF", 0.2)]["params"] < by[("GIF", 1.0)]["params"]
    with pytest.raises(ValueError):
        ex.compare_methods(setup, (x, y), (x, y), methods=("XIF",))
    no_second = ex.compare_methods(setup, (x, y), (x, y), ratios=(0.2,), steps=(1.0,), methods=("IF", "GIF"))
    assert [r["method"] for r in no_second] == ["IF", "GIF"]


# ------------------------------------------------------------------------------- GIF's directions
def _trained_setup() -> tuple[nn.Module, ex.RemovalSetup, torch.Tensor]:
    x, y = _data()
    model = _model()
    gl.train.train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=1e-2, tol=1e-8, max_iter=500)
    setup = ex.removal_setup(model, (x, y), [0], n_hessian=60, weight_decay=1e-2)
    p = torch.tensor([0, 2, 5, 9, 13, 20, 31, 40, 44])
    return model, setup, p


def test_first_order_uses_the_full_data_hessian() -> None:
    x, y = _data()
    _, setup, _ = _trained_setup()
    rows = ex.compare_methods(
        setup,
        (x, y),
        (x, y),
        ratios=(),
        steps=(1.0,),
        methods=("IF", "first-order", "second-order"),
        max_iter=500,
    )
    assert [r["method"] for r in rows] == ["IF", "first-order", "second-order"]
    full = setup.second_order[0]
    dense = torch.linalg.solve(full.hessian(), setup.g)
    direct = setup.obj.hessian()
    by = {r["method"]: r for r in rows}
    assert by["first-order"]["norm"] == pytest.approx(float(dense.norm()), rel=1e-6)
    assert by["IF"]["norm"] == pytest.approx(float(torch.linalg.solve(direct, setup.g).norm()), rel=1e-6)
    assert abs(by["first-order"]["norm"] - by["IF"]["norm"]) > 1e-6  # two Hessians, two answers


def test_cosine() -> None:
    a = torch.tensor([1.0, 0.0])
    assert ex.cosine(a, torch.tensor([2.0, 0.0])) == pytest.approx(1.0)
    assert ex.cosine(a, torch.tensor([-1.0, 1.0])) == pytest.approx(-(0.5**0.5))
    assert ex.cosine(a, torch.zeros(2)) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        ex.cosine(a, torch.ones(3))


def test_tikhonov_gif_matches_dense() -> None:
    _, setup, p = _trained_setup()
    a = setup.obj.hessian()[:, p]
    for gamma in (0.0, 0.05):
        d = ex.tikhonov_gif(setup.obj, setup.g, p, gamma, tol=1e-12)
        dense = torch.linalg.solve(a.T @ a + gamma**2 * torch.eye(p.numel(), dtype=a.dtype), a.T @ setup.g)
        assert torch.allclose(d.delta, dense, rtol=1e-6, atol=1e-10)
        assert d.misfit == pytest.approx(float((a @ dense - setup.g).norm() / setup.g.norm()), rel=1e-6)
    with pytest.raises(ValueError, match="gamma"):
        ex.tikhonov_gif(setup.obj, setup.g, p, -1.0)


def test_gif_directions_family() -> None:
    _, setup, p = _trained_setup()
    h = setup.obj.hessian()
    dirs = ex.gif_directions(
        setup.obj, setup.g, p, landweber_iters=30, lsqr_iters=(1, 2, 4), gammas=(0.1,), tol=1e-10
    )
    by = {d.name: d for d in dirs}
    assert list(by) == [
        "H[P,:] g",
        "paper (30 steps)",
        "LSQR 1",
        "LSQR 2",
        "LSQR 4",
        "LSQR converged",
        "Tikhonov 0.1",
    ]
    assert torch.allclose(by["H[P,:] g"].delta, (h @ setup.g)[p])
    exact = torch.linalg.pinv(h[:, p]) @ setup.g
    assert torch.allclose(by["LSQR converged"].delta, exact, rtol=1e-6, atol=1e-10)
    # one LSQR step is the first term, rescaled: x_1 is a multiple of A^T g
    assert ex.cosine(by["LSQR 1"].delta, by["H[P,:] g"].delta) == pytest.approx(1.0, abs=1e-10)
    # LSQR's misfit never grows with the iterations, and the converged solve has the least of all
    m = [by[k].misfit for k in ("LSQR 1", "LSQR 2", "LSQR 4", "LSQR converged")]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(m))
    assert all(by["LSQR converged"].misfit <= d.misfit + 1e-9 for d in dirs)
    assert by["paper (30 steps)"].hvps > 0 and by["H[P,:] g"].hvps == 2


def test_paper_step_search_walks_and_restores() -> None:
    model = _model()
    theta = gl.flat_params(model)
    p = torch.tensor([1])

    def scores(m: nn.Module) -> dict[str, float]:
        moved = float(gl.flat_params(m)[1]) - float(theta[1])
        a = 0.0 if moved >= 0.3 - 1e-9 else 1.0 - moved
        return {"acc_removed": a, "acc_rest": 0.9, "f1": ex.removal_f1(min(a, 1.0), 0.9) - abs(moved - 0.2)}

    norm, best, path = ex.paper_step_search(
        model, torch.tensor([2.0], dtype=torch.float64), p, scores, increment=0.03, fine_above=None
    )
    steps = [r["step"] for r in path]
    assert steps[:3] == pytest.approx([0.03, 0.06, 0.09])
    assert path[-1]["acc_removed"] == 0.0 and len(path) == 10  # stopped once the class was forgotten
    assert best == max(r["f1"] for r in path) and norm == pytest.approx(
        steps[[r["f1"] for r in path].index(best)]
    )
    assert torch.equal(gl.flat_params(model), theta)
    with pytest.raises(ValueError):
        ex.paper_step_search(model, torch.ones(1), p, scores, increment=0.0)


def test_gif_directions_caps_the_converged_solve() -> None:
    _, setup, p = _trained_setup()
    full = ex.gif_directions(setup.obj, setup.g, p, landweber_iters=2, lsqr_iters=(2,), tol=1e-10)
    capped = ex.gif_directions(
        setup.obj, setup.g, p, landweber_iters=2, lsqr_iters=(2,), tol=1e-10, max_iter=2
    )
    assert torch.allclose(capped[-1].delta, full[2].delta)  # capped at 2 iterations = LSQR 2
    assert capped[-1].misfit > full[-1].misfit


# ------------------------------------------------------------------------------------------ appended: class_removal's helpers
@pytest.mark.filterwarnings("ignore::gif_lite.solvers.ConvergenceWarning")  # stopped at k on purpose
def test_remembered_hvp_gives_lsqr_prefixes_for_free() -> None:
    _, setup, p = _trained_setup()
    op = ex.RememberedHVP(setup.obj)
    for k in (2, 5):  # LSQR stopped at k repeats the first k iterations of the longer run
        a = gl.generalized_influence(setup.obj, setup.g, p, max_iter=k, tol=1e-12)
        b = gl.generalized_influence(op, setup.g, p, max_iter=k, tol=1e-12)
        assert torch.equal(a.delta, b.delta) and a.hvps == b.hvps
    full = gl.generalized_influence(setup.obj, setup.g, p, tol=1e-10)
    again = gl.generalized_influence(op, setup.g, p, tol=1e-10)
    assert torch.equal(full.delta, again.delta) and full.hvps == again.hvps
    # the shorter runs cost only their own final products (the misfit of their answer)
    assert full.hvps <= op.computed <= full.hvps + 4 < op.hvp_calls
    v = torch.randn(setup.obj.num_params, dtype=setup.obj.dtype)
    out = op.hvp(v)
    out.add_(1.0)  # a caller writing on the result does not change what is remembered
    assert torch.equal(op.hvp(v), setup.obj.hvp(v))


@pytest.mark.filterwarnings("ignore::gif_lite.solvers.ConvergenceWarning")
def test_remembered_hvp_falls_back_when_too_large() -> None:
    _, setup, p = _trained_setup()
    op = ex.RememberedHVP(setup.obj, max_bytes=0)
    a = gl.generalized_influence(op, setup.g, p, max_iter=3, tol=1e-12)
    b = gl.generalized_influence(setup.obj, setup.g, p, max_iter=3, tol=1e-12)
    assert torch.equal(a.delta, b.delta) and op.computed == op.hvp_calls == a.hvps
    with pytest.raises(TypeError):
        ex.RememberedHVP(op)  # type: ignore[arg-type]


def test_removal_scorer_matches_the_single_model_functions() -> None:
    x, y = _data()
    model, refs = _model(0), [_model(1), _model(2)]
    scorer = ex.RemovalScorer((x, y), [0], refs)
    s = scorer(model)
    base = ex.removal_scores(model, (x, y), [0])
    for k in ("acc_removed", "acc_rest", "f1"):
        assert s[k] == pytest.approx(base[k], abs=1e-12)
    agree = [ex.prediction_agreement(model, r, x) for r in refs]
    kl = [ex.mean_kl(model, r, x) for r in refs]
    assert s["agreement"] == pytest.approx(sum(agree) / 2, abs=1e-12)
    assert s["kl"] == pytest.approx(sum(kl) / 2, rel=1e-9)
    assert set(ex.RemovalScorer((x, y), [0])(model)) == {"acc_removed", "acc_rest", "f1"}


def test_compare_scored_equals_compare_methods_with_one_reference() -> None:
    x, y = _data()
    _, setup, _ = _trained_setup()
    ref = _model(3)
    kwargs = {"methods": ("IF", "PIF", "FIF", "GIF"), "ratios": (0.2,), "steps": (0.5, 1.0), "max_iter": 30}
    rows = ex.compare_methods(setup, (x, y), (x, y), reference=ref, **kwargs)
    val, test = ex.RemovalScorer((x, y), [0]), ex.RemovalScorer((x, y), [0], [ref])
    scored, estimates = ex.compare_scored(setup, val, test, **kwargs)
    assert [e.method for e in estimates] == [r["method"] for r in scored] == [r["method"] for r in rows]
    for a, b in zip(rows, scored, strict=True):
        assert set(a) == set(b)
        for k, v in a.items():
            assert b[k] == (v if isinstance(v, str) else pytest.approx(v, rel=1e-9, abs=1e-12)), k
    with pytest.raises(ValueError, match="unknown methods"):
        ex.compare_scored(setup, val, test, methods=("XIF",))


# ------------------------------------------------------------------------------------------ appended: selection_study's helpers
def test_gif_directions_block_equals_the_matrix_free_directions() -> None:
    _, setup, p = _trained_setup()
    kw = {"landweber_iters": 40, "normalizer_step": 3.0, "lsqr_iters": (1, 3), "gammas": (0.0, 0.1)}
    free = ex.gif_directions(setup.obj, setup.g, p, tol=1e-10, **kw)
    block = ex.gif_directions_block(setup.obj, setup.g, p, tol=1e-10, **kw)
    assert [d.name for d in block] == [d.name for d in free]
    for a, b in zip(free, block, strict=True):
        assert torch.allclose(b.delta, a.delta, rtol=1e-9, atol=1e-12), a.name
        assert b.misfit == pytest.approx(a.misfit, rel=1e-9, abs=1e-12) and b.hvps == a.hvps
    dense = setup.obj.hessian()[:, p]  # the converged LSQR is the least-squares solution
    assert torch.allclose(block[-3].delta, torch.linalg.lstsq(dense, setup.g).solution, rtol=1e-6)
    with pytest.raises(ValueError, match="gamma"):
        ex.gif_directions_block(setup.obj, setup.g, p, gammas=(-1.0,))


def test_selection_grid_matches_compare_methods() -> None:
    x, y = _data()
    _, setup, _ = _trained_setup()
    steps = (0.5, 1.0, 2.0)
    rows = ex.selection_grid(
        setup,
        (x, y),
        (x, y),
        selections=("highest_gradients", "random"),
        ratios=(0.2, 1.0),
        steps=steps,
        max_iter=50,
    )
    assert [(r["selection"], r["ratio"]) for r in rows] == [
        ("highest_gradients", 0.2),
        ("random", 0.2),
        ("highest_gradients", 1.0),
        ("random", 1.0),
    ]
    for r in rows[:2]:
        (ref,) = ex.compare_methods(
            setup,
            (x, y),
            (x, y),
            methods=("GIF",),
            ratios=(0.2,),
            selection=r["selection"],
            steps=steps,
            max_iter=50,
        )
        assert r["params"] == ref["params"] and r["step"] == ref["step"]
        assert r["residual"] == pytest.approx(ref["residual"], rel=1e-6)
        assert r["f1"] == pytest.approx(ref["val_f1"]) and r["acc_removed"] == pytest.approx(
            ref["val_acc_removed"]
        )
    assert rows[2]["params"] == setup.obj.num_params and rows[2]["labels"] is rows[3]["labels"]  # solved once
    assert rows[0]["labels"].shape == y.shape
