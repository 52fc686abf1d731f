"""Tests of gif_lite.book.experiments: scores, distances, the step search, the method loop, paper configs."""

from __future__ import annotations

import math

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
