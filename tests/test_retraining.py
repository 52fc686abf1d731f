"""Influence against real retraining: logistic regression on digits, and exact linear regression."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book.data import load_data
from gif_lite.book.models import LogisticRegression
from gif_lite.train import retrain_without, train_lbfgs

pytestmark = pytest.mark.slow  # retrains models

WD = 1e-2


def test_if_predicts_retrained_test_loss_change_on_logistic_regression() -> None:
    """L2-regularised logistic regression on digits, 32 random groups of 5-60 examples, retrained to
    ||grad|| < 1e-7: predicted (grad L_test . delta) vs actual test-loss change, Pearson r >= 0.99."""
    torch.manual_seed(0)
    digits = load_data("digits", flatten=True, dtype=torch.float64)
    y = digits.train[1]
    model = LogisticRegression(64, 10).double()
    train_lbfgs(model, F.cross_entropy, digits.train, weight_decay=WD, tol=1e-7, max_iter=2000)
    test_obj = gl.Objective(model, F.cross_entropy, digits.test)
    test_grad, test_loss = test_obj.gradient(), test_obj.loss()
    gen = torch.Generator().manual_seed(1)
    predicted, actual = [], []
    for size in torch.linspace(5, 60, 32).round().long().tolist():
        group = torch.randperm(len(y), generator=gen)[:size]
        problem = gl.removal_problem(model, F.cross_entropy, digits.train, group, weight_decay=WD)
        delta = gl.influence(problem.objective, problem.g, solver="cg").delta
        retrained = retrain_without(
            model, F.cross_entropy, digits.train, group, weight_decay=WD, tol=1e-7, max_iter=2000
        )
        predicted.append(float(test_grad @ delta))
        actual.append(gl.Objective(retrained, F.cross_entropy, digits.test).loss() - test_loss)
    r = stats.pearsonr(predicted, actual).statistic
    assert r >= 0.99, f"Pearson r = {r:.4f}"
    print(f"Pearson r = {r:.5f}")


def _ridge(x: torch.Tensor, y: torch.Tensor, wd: float) -> torch.Tensor:
    """argmin (1/2n) ||x w - y||^2 + wd/2 ||w||^2 in closed form."""
    n, d = x.shape
    return torch.linalg.solve(x.T @ x / n + wd * torch.eye(d, dtype=x.dtype), x.T @ y / n)


def test_second_order_group_influence_beats_first_order_for_large_groups() -> None:
    gen = torch.Generator().manual_seed(0)
    n, d, wd = 400, 6, 1e-2
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) @ torch.randn(
        d, d, generator=gen, dtype=torch.float64
    )
    y = x @ torch.randn(d, generator=gen, dtype=torch.float64) + 0.5 * torch.randn(
        n, generator=gen, dtype=torch.float64
    )
    model = nn.Linear(d, 1, bias=False).double()

    def mse(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((out.squeeze(-1) - t) ** 2).mean()

    w_full = _ridge(x, y, wd)
    gl.set_flat_params(model, w_full)
    full = gl.Objective(model, mse, (x, y), weight_decay=wd)
    order = x[:, 0].argsort(descending=True)  # a group unlike the rest: H_U != H
    errors = {}
    for m in (20, 80, 160):
        group = order[:m]
        keep = order[m:]
        exact = _ridge(x[keep], y[keep], wd) - w_full
        group_obj = gl.Objective(model, mse, (x[group], y[group]), weight_decay=wd)
        p = m / n
        first = (p / (1 - p)) * gl.influence(full, group_obj.gradient()).delta
        second = gl.second_order_influence(full, group_obj, p).delta
        errors[m] = (
            float((first - exact).norm() / exact.norm()),
            float((second - exact).norm() / exact.norm()),
        )
        # the contract's Newton step on the retained objective is exact for a quadratic loss
        problem = gl.removal_problem(model, mse, (x, y), group, weight_decay=wd)
        newton = gl.influence(problem.objective, problem.g).delta
        assert float((newton - exact).norm() / exact.norm()) < 1e-8
    for m, (first_err, second_err) in errors.items():
        assert second_err < first_err, (m, errors)
    assert errors[160][1] < 0.5 * errors[160][0]
    # first-order error grows like p^2 relative to p, second-order like p^3: the gap widens with m
    assert errors[160][0] / errors[20][0] > errors[160][1] / errors[20][1] / 10


def test_removal_g_at_optimum_equals_retained_gradient() -> None:
    torch.manual_seed(0)
    digits = load_data("digits", flatten=True, dtype=torch.float64)
    model = LogisticRegression(64, 10).double()
    train_lbfgs(model, F.cross_entropy, digits.train, weight_decay=WD, tol=1e-8, max_iter=3000)
    group = torch.arange(0, 300, 7)
    exact = gl.removal_problem(model, F.cross_entropy, digits.train, group, weight_decay=WD).g
    formula = gl.removal_problem(
        model, F.cross_entropy, digits.train, group, weight_decay=WD, at_optimum=True
    ).g
    # -grad L_retained = (m/(n-m)) (grad L_U + wd theta) - (n/(n-m)) grad L_full: equal up to the training residual
    n, m = len(digits.train[1]), group.numel()
    full_grad = gl.Objective(model, F.cross_entropy, digits.train, weight_decay=WD).gradient().norm()
    assert float((formula - exact).norm()) <= 1.01 * n / (n - m) * float(full_grad)
    assert float((formula - exact).norm() / exact.norm()) < 1e-5
    without_wd = gl.removal_problem(
        model, F.cross_entropy, digits.train, group, weight_decay=0.0, at_optimum=True
    ).g
    assert float((without_wd - exact).norm() / exact.norm()) > 0.01  # forgetting weight decay is visible


def test_relabel_g_at_optimum_equals_new_gradient() -> None:
    torch.manual_seed(0)
    digits = load_data("digits", flatten=True, dtype=torch.float64)
    model = LogisticRegression(64, 10).double()
    train_lbfgs(model, F.cross_entropy, digits.train, weight_decay=WD, tol=1e-8, max_iter=3000)
    group = torch.arange(0, 200, 9)
    new = (digits.train[1][group] + 1) % 10
    exact = gl.relabel_problem(model, F.cross_entropy, digits.train, group, new, weight_decay=WD).g
    formula = gl.relabel_problem(
        model, F.cross_entropy, digits.train, group, new, weight_decay=WD, at_optimum=True
    ).g
    full_grad = gl.Objective(model, F.cross_entropy, digits.train, weight_decay=WD).gradient().norm()
    assert float((formula - exact).norm()) <= 1.01 * float(full_grad)  # they differ by grad L_full
    assert float((formula - exact).norm() / exact.norm()) < 1e-5
