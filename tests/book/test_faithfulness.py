"""gif_lite.book.faithfulness: groups, estimators, the effect loop and the correlation table."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace
from typing import cast

import pytest
import torch
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book import faithfulness as fa
from gif_lite.book import toy
from gif_lite.book.faithfulness import (
    EffectRow,
    EffectSetup,
    Group,
    correlation_table,
    dense_estimators,
    estimate_group_effects,
    make_groups,
    matrix_free_estimators,
    pearson,
    spearman,
)
from gif_lite.book.models import MLP
from gif_lite.train import train_lbfgs

WD = 0.1


def _ridge() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    reg = toy.correlated_regression(300, 4, rho=0.5, noise=0.5, seed=0)
    x, y = reg.x.clone(), reg.y.clone()
    x[:60] += 1.0  # a shifted subpopulation, so that removing part of it moves the model
    y[:60] += 2.0
    test = toy.correlated_regression(200, 4, rho=0.5, noise=0.5, seed=1)
    return (x, y), (test.x, test.y), toy.ridge_fit(x, y, WD)


def _ridge_retrain(train: tuple[torch.Tensor, torch.Tensor]):  # type: ignore[no-untyped-def]
    x, y = train

    def retrain(idx: torch.Tensor) -> torch.nn.Module:
        keep = torch.ones(len(y), dtype=torch.bool)
        keep[idx] = False
        return toy.linear_model(toy.ridge_fit(x[keep], y[keep], WD))

    return retrain


def test_if_is_exact_on_linear_regression() -> None:
    """Quadratic objective and quadratic test loss: the Newton step with the retained Hessian is retraining."""
    train, test, theta = _ridge()
    groups = [Group("random", torch.arange(k, 300, 17)[:n]) for k, n in ((0, 10), (3, 15))]
    groups += make_groups(train[1] > 0, n_random=3, n_same_class=3, sizes=(5, 30), seed=0)
    setup = EffectSetup(toy.linear_model(theta), toy.half_squared_error, train, test, _ridge_retrain(train),
                        weight_decay=WD, selection="largest_gradient_entries")  # fmt: skip
    rows = estimate_group_effects(setup, groups, matrix_free_estimators(), ratios=(0.5,))
    if_rows = [r for r in rows if r.estimator == "IF"]
    assert len(if_rows) == len(groups) and len(rows) == 4 * len(groups)
    for r in if_rows:
        assert abs(r.predicted - r.actual) < 1e-8 * max(1.0, abs(r.actual))
        assert r.ratio == 1.0 and r.subset_size == 4
    table = {(t["estimator"], t["ratio"]): t for t in correlation_table(rows)}
    assert table[("IF", 1.0)]["pearson"] > 1 - 1e-10 and table[("IF", 1.0)]["spearman"] == pytest.approx(1.0)
    assert table[("IF", 1.0)]["sign"] == 1.0 and table[("IF", 1.0)]["slope"] == pytest.approx(1.0, abs=1e-8)
    assert table[("GIF", 0.5)]["groups"] == len(groups)
    assert {r["estimator"] for r in correlation_table(rows, by_kind=True)} == {"IF", "FIF", "PIF", "GIF"}


def test_every_estimator_is_exact_when_p_is_everything() -> None:
    train, test, theta = _ridge()
    groups = make_groups(train[1] > 0, n_random=2, n_same_class=2, sizes=(5, 20), seed=3)
    setup = EffectSetup(toy.linear_model(theta), toy.half_squared_error, train, test, _ridge_retrain(train),
                        weight_decay=WD, selection="random")  # fmt: skip
    rows = estimate_group_effects(setup, groups, matrix_free_estimators(), ratios=(1.0,))
    for r in rows:
        assert abs(r.predicted - r.actual) < 1e-8 * max(1.0, abs(r.actual)), r


def test_dense_estimators_match_gif_lite() -> None:
    torch.manual_seed(0)
    x = torch.randn(80, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (80,))
    model = MLP((5, 4, 3), activation="tanh").double()
    train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=WD, tol=1e-8, max_iter=2000, progress=False)
    problem = gl.removal_problem(model, F.cross_entropy, (x, y), torch.arange(6), weight_decay=WD)
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=WD)
    dense = dense_estimators(obj.hessian())
    free = matrix_free_estimators(obj, gif_kwargs={"solver": "direct"})
    subset = torch.tensor([0, 3, 7, 20, 31, 38])
    for name in ("IF", "FIF", "PIF", "GIF"):
        p = None if name == "IF" else subset
        a, b = dense[name](problem, p), free[name](problem, p)
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-10), name
        if p is not None:
            outside = torch.ones(obj.num_params, dtype=torch.bool)
            outside[p] = False
            assert (a[outside] == 0).all()
    pif = gl.projected_influence(obj, problem.g, subset).full(obj.num_params)
    assert torch.allclose(free["PIF"](problem, subset), pif, rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="subset"):
        dense["GIF"](problem, None)


def test_control_and_untouched_model() -> None:
    train, test, theta = _ridge()
    model = toy.linear_model(theta)
    control = toy.linear_model(theta + 0.01)
    groups = [Group("random", torch.arange(5))]
    retrain = _ridge_retrain(train)
    setup = EffectSetup(model, toy.half_squared_error, train, test, retrain, weight_decay=WD)
    plain = estimate_group_effects(setup, groups, matrix_free_estimators(), ratios=(0.5,))
    with_control = dataclasses.replace(setup, control=control)
    ctrl = estimate_group_effects(with_control, groups, matrix_free_estimators(), ratios=(0.5,))
    with torch.no_grad():
        shift = toy.half_squared_error(control(test[0]), test[1]) - toy.half_squared_error(
            model(test[0]), test[1]
        )
    assert ctrl[0].actual == pytest.approx(plain[0].actual - float(shift), abs=1e-12)
    assert torch.equal(gl.flat_params(model), theta)


def test_make_groups() -> None:
    y = torch.arange(200) % 4
    groups = make_groups(y, n_random=3, n_same_class=5, sizes=(10, 20), seed=0)
    assert [g.kind for g in groups] == ["random", "same-class"] * 3 + ["same-class"] * 2
    for g in groups:
        assert 10 <= g.size <= 20 and torch.unique(g.indices).numel() == g.size
        if g.kind == "same-class":
            assert torch.unique(y[g.indices]).numel() == 1
    assert all(
        torch.equal(a.indices, b.indices) for a, b in zip(groups, make_groups(y, 3, 5, (10, 20), seed=0))
    )
    with pytest.raises(ValueError):
        make_groups(y, 1, 1, sizes=(0, 5))


def test_correlations() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert spearman(x, [v**3 for v in x]) == pytest.approx(1.0)
    assert spearman(x, [-v for v in x]) == pytest.approx(-1.0)
    assert spearman([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.9486832980505138)  # scipy
    assert pearson([1.0, 2.0, 4.0], [1.0, 3.0, 2.0]) == pytest.approx(0.3273268353539885)  # scipy
    assert math.isnan(pearson([1.0, 1.0], [1.0, 2.0]))
    rows = [
        EffectRow(k, "random", 10, "IF", 1.0, 4, p, p, a)
        for k, (p, a) in enumerate([(1, 2), (-1, 1), (2, 4)])
    ]
    (t,) = correlation_table(rows)
    assert t["sign"] == pytest.approx(2 / 3) and t["groups"] == 3
    assert t["slope"] == pytest.approx((2 - 1 + 8) / (4 + 1 + 16))
    with pytest.raises(ValueError):
        correlation_table(rows, use="nonsense")


def test_retained_hessians_and_a_shared_objective() -> None:
    """The downdated Hessian equals the retained objective's; a shared Objective survives the loop."""
    torch.manual_seed(1)
    x = torch.randn(60, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (60,))
    model = MLP((5, 4, 3), activation="tanh").double()
    train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=WD, tol=1e-8, max_iter=2000, progress=False)
    problem = gl.removal_problem(model, F.cross_entropy, (x, y), torch.tensor([2, 5, 11]), weight_decay=WD)
    h = fa.retained_hessians(model, F.cross_entropy, (x, y), WD)(problem)
    assert torch.allclose(h, problem.objective.hessian(), atol=1e-12)
    shared = gl.Objective(
        model, F.cross_entropy, (x, y), weight_decay=WD
    )  # keeps a gradient graph across groups
    groups = make_groups(y, 2, 1, sizes=(3, 6), seed=0)
    setup = EffectSetup(model, F.cross_entropy, (x, y), (x[:20], y[:20]), lambda idx: model, weight_decay=WD,
                        selection="random")  # fmt: skip
    rows = estimate_group_effects(setup, groups, matrix_free_estimators(shared), ratios=(0.3,))
    assert len(rows) == 4 * len(groups) and all(r.actual == 0.0 for r in rows)


def test_slope_samples_are_paired_and_centred() -> None:
    """A cell that predicts exactly twice the actual change has slope 2 in every resample; the
    point slope lies inside the interval; cells share their draws of groups; bad input is refused."""
    gen = torch.Generator().manual_seed(0)
    actual = torch.randn(25, generator=gen, dtype=torch.float64)
    noisy = actual + 0.3 * torch.randn(25, generator=gen, dtype=torch.float64)
    rows = [
        EffectRow(k, "random", 10, "IF", 1.0, 4, 0.0, 2 * float(a), float(a)) for k, a in enumerate(actual)
    ]
    rows += [EffectRow(k, "random", 10, "GIF", 0.1, 2, 0.0, float(p), float(a)) for k, (p, a) in
             enumerate(zip(noisy, actual))]  # fmt: skip
    samples = fa.slope_samples(rows, use="linear", n_boot=500, seed=1)
    assert torch.allclose(samples[("IF", 1.0)], torch.full((500,), 2.0, dtype=torch.float64))
    point = float(noisy @ actual / (actual @ actual))
    low, high = fa.percentile_interval(samples[("GIF", 0.1)], level=0.9)
    assert low < point < high and high - low < 0.5
    again = fa.slope_samples(list(reversed(rows)), use="linear", n_boot=500, seed=1)
    assert torch.equal(again[("GIF", 0.1)], samples[("GIF", 0.1)])  # same draws, whatever the order
    with pytest.raises(ValueError, match="complete"):
        fa.slope_samples(rows[:-1], use="linear")
    with pytest.raises(ValueError, match="level"):
        fa.percentile_interval(samples[("IF", 1.0)], level=1.5)


def test_misfit_is_zero_for_if_and_smallest_for_gif() -> None:
    train, test, theta = _ridge()
    groups = make_groups(train[1] > 0, n_random=2, n_same_class=1, sizes=(5, 20), seed=2)
    setup = EffectSetup(toy.linear_model(theta), toy.half_squared_error, train, test, _ridge_retrain(train),
                        weight_decay=WD, selection="largest_gradient_entries")  # fmt: skip
    rows = estimate_group_effects(setup, groups, matrix_free_estimators(), ratios=(0.5,), misfit=True)
    by = {name: [r.misfit for r in rows if r.estimator == name] for name in fa.ESTIMATORS}
    assert max(by["IF"]) < 1e-6  # the Newton step cancels g
    for gif, fif, pif in zip(by["GIF"], by["FIF"], by["PIF"], strict=True):
        assert 0.0 < gif <= min(1.0, fif, pif) + 1e-9  # GIF minimises rho over updates on P; x = 0 gives 1
    plain = estimate_group_effects(setup, groups[:1], matrix_free_estimators(), ratios=(0.5,))
    assert all(math.isnan(r.misfit) for r in plain)


def test_error_and_closer_share() -> None:
    """``error`` is mean |p - a| / mean |a| (1 for predicting nothing); closer_share counts strict wins."""
    rows = [EffectRow(k, "random", 10, "FIF", 0.1, 2, 0.0, p, a)
            for k, (p, a) in enumerate([(1.0, 2.0), (-1.0, 1.0), (0.0, -3.0)])]  # fmt: skip
    rows += [EffectRow(k, "random", 10, "GIF", 0.1, 2, 0.0, p, a)
             for k, (p, a) in enumerate([(2.0, 2.0), (-2.0, 1.0), (0.0, -3.0)])]  # fmt: skip
    table = {t["estimator"]: t for t in correlation_table(rows, use="linear")}
    assert table["FIF"]["error"] == pytest.approx((1 + 2 + 3) / 6)
    assert table["GIF"]["error"] == pytest.approx((0 + 3 + 3) / 6)
    nothing = [dataclasses.replace(r, linear=0.0) for r in rows if r.estimator == "FIF"]
    assert correlation_table(nothing, use="linear")[0]["error"] == pytest.approx(1.0)
    assert fa.closer_share(rows, "GIF", "FIF") == {0.1: pytest.approx(1 / 3)}  # a tie is no win
    assert fa.closer_share(rows, "FIF", "GIF") == {0.1: pytest.approx(1 / 3)}
    with pytest.raises(ValueError, match="same groups"):
        fa.closer_share(rows[:-1], "GIF", "FIF")
    with pytest.raises(ValueError):
        fa.closer_share(rows, "GIF", "FIF", use="nonsense")


def test_perturbed_and_actual_changes() -> None:
    train, test, theta = _ridge()
    model = toy.linear_model(theta)
    moved = fa.perturbed(model, 1e-3, seed=4)
    shift = gl.flat_params(moved) - theta
    assert float(shift.norm()) == pytest.approx(1e-3 * float(theta.norm()), rel=1e-10)
    assert torch.equal(gl.flat_params(model), theta)  # untouched
    assert torch.equal(gl.flat_params(fa.perturbed(model, 1e-3, seed=4)), theta + shift)
    assert torch.equal(gl.flat_params(fa.perturbed(model, 0.0)), theta)
    with pytest.raises(ValueError):
        fa.perturbed(model, -1.0)
    groups = make_groups(train[1] > 0, n_random=2, n_same_class=1, sizes=(5, 20), seed=1)
    setup = EffectSetup(model, toy.half_squared_error, train, test, _ridge_retrain(train),
                        weight_decay=WD, selection="random")  # fmt: skip
    rows = estimate_group_effects(setup, groups, matrix_free_estimators(), ratios=(0.5,))
    actual = fa.actual_changes(setup, groups)
    assert actual == [next(r.actual for r in rows if r.group == k) for k in range(len(groups))]
    control = toy.linear_model(theta + 0.01)
    with_control = fa.actual_changes(dataclasses.replace(setup, control=control), groups)
    with torch.no_grad():
        offset = float(toy.half_squared_error(control(test[0]), test[1]))
        offset -= float(toy.half_squared_error(model(test[0]), test[1]))
    assert with_control == pytest.approx([a - offset for a in actual], abs=1e-12)


@pytest.mark.filterwarnings("ignore::gif_lite.ConvergenceWarning")  # capped on purpose
def test_dense_curvature_runs_the_same_solvers() -> None:
    """Capped or converged, gif_lite's solvers on the dense matrix equal those on the Objective."""
    torch.manual_seed(2)
    x = torch.randn(60, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (60,))
    model = MLP((5, 4, 3), activation="tanh").double()
    train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=WD, tol=1e-8, max_iter=2000, progress=False)
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=WD)
    dense = fa.dense_curvature(obj)
    assert dense.objective is obj and dense.num_params == obj.num_params
    assert torch.allclose(dense.h, obj.hessian(), atol=1e-12)
    problem = gl.removal_problem(model, F.cross_entropy, (x, y), torch.arange(5), weight_decay=WD)
    subset = torch.tensor([1, 4, 9, 16, 25, 33, 37])
    for caps in ({"max_iter": 4}, {}):
        a = matrix_free_estimators(obj, caps, caps)
        b = matrix_free_estimators(dense, caps, caps)
        for name in fa.ESTIMATORS:
            p = None if name == "IF" else subset
            assert torch.allclose(a[name](problem, p), b[name](problem, p), rtol=1e-8, atol=1e-10), name
    with pytest.raises(ValueError, match="square"):
        fa.DenseCurvature(torch.zeros(3, 4))
    # a DenseOperator whose columns are read from the matrix: the products' answer, counted as products
    assert isinstance(dense, gl.DenseOperator)
    by_products = gl.DenseOperator(dense.h).hessian_columns(subset)
    calls = dense.hvp_calls
    assert torch.equal(dense.hessian_columns(subset), by_products)
    assert dense.hvp_calls == calls + subset.numel()
    assert torch.equal(dense.hessian(), dense.h) and torch.equal(dense.h, dense.h.T)


def test_dense_estimators_are_dense_algebra() -> None:
    """IF, FIF, PIF by one LU solve each and GIF by the pseudo-inverse, on the symmetrised matrix."""
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(12, 12, generator=gen, dtype=torch.float64)
    h = a @ a.T + 0.1 * torch.eye(12, dtype=torch.float64)
    h[0, 1] += 1e-9  # not exactly symmetric: the estimators see (H + H^T) / 2
    sym = 0.5 * (h + h.T)
    g = torch.randn(12, generator=gen, dtype=torch.float64)
    problem = cast(gl.InfluenceProblem, SimpleNamespace(g=g))
    p = torch.tensor([1, 4, 5, 9])
    est = dense_estimators(h)
    full = torch.linalg.solve(sym, g)
    assert torch.allclose(est["IF"](problem, None), full, rtol=1e-12, atol=0)
    assert torch.allclose(est["PIF"](problem, p)[p], full[p], rtol=1e-12, atol=0)
    assert torch.allclose(est["FIF"](problem, p)[p], torch.linalg.solve(sym[p][:, p], g[p]), rtol=1e-12)
    gif = torch.linalg.lstsq(sym[:, p], g.unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(est["GIF"](problem, p)[p], gif, rtol=1e-10, atol=0)
    assert (est["GIF"](problem, p).count_nonzero()) == p.numel()


def test_chapter_config() -> None:
    small = fa.chapter_config()
    assert small == fa.chapter_config("small", smoke=True)  # smoke only shrinks the paper scale
    assert small.cnn_side == 14 and small.dense_cnn_hessian and "trained afresh" in small.describe()
    paper = fa.chapter_config("paper")
    smoke = fa.chapter_config("paper", smoke=True)
    assert paper.cnn_side == smoke.cnn_side == 28 and not paper.dense_cnn_hessian
    assert smoke.cnn_train < small.cnn_train < paper.cnn_train
    assert paper.mlp_groups > small.mlp_groups > smoke.mlp_groups
    with pytest.raises(ValueError, match="scale"):
        fa.chapter_config("huge")
