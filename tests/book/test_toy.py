"""gif_lite.book.toy: closed-form ridge regression against autograd, the data generator, the loss grid."""

from __future__ import annotations

import pytest
import torch

import gif_lite as gl
from gif_lite.book import toy


@pytest.fixture
def reg() -> toy.RegressionData:
    return toy.correlated_regression(400, 4, rho=0.7, noise=0.3, seed=1)


def test_ridge_fit_is_stationary_and_hessian_matches(reg: toy.RegressionData) -> None:
    theta = toy.ridge_fit(reg.x, reg.y, weight_decay=0.1)
    obj = gl.Objective(toy.linear_model(theta), toy.half_squared_error, (reg.x, reg.y), weight_decay=0.1)
    assert obj.gradient().norm() < 1e-12
    h = reg.x.T @ reg.x / 400 + 0.1 * torch.eye(4, dtype=torch.float64)
    assert torch.allclose(obj.hessian(), h, atol=1e-12)
    assert toy.ridge_loss(reg.x, reg.y, 0.1, theta).item() == pytest.approx(obj.loss(), rel=1e-12)


def test_correlated_regression_shapes_and_correlation() -> None:
    data = toy.correlated_regression(20000, 3, rho=0.8, noise=0.0, seed=0)
    assert data.x.shape == (20000, 3) and data.y.shape == (20000,) and data.x.dtype == torch.float64
    corr = torch.corrcoef(data.x.T)
    assert abs(float(corr[0, 1]) - 0.8) < 0.02 and abs(float(corr[0, 2]) - 0.64) < 0.02
    assert torch.allclose(data.y, data.x @ data.theta_true)
    again = toy.correlated_regression(20000, 3, rho=0.8, noise=0.0, seed=0)
    assert torch.equal(data.x, again.x)
    with pytest.raises(ValueError):
        toy.correlated_regression(10, 3, rho=1.0)


def test_retraining_is_one_newton_step(reg: toy.RegressionData) -> None:
    """For a quadratic loss the Newton step with the retained Hessian is exact retraining."""
    theta = toy.ridge_fit(reg.x, reg.y, 0.05)
    group = torch.arange(0, 400, 7)
    problem = gl.removal_problem(
        toy.linear_model(theta), toy.half_squared_error, (reg.x, reg.y), group, weight_decay=0.05
    )
    keep = torch.ones(400, dtype=torch.bool)
    keep[group] = False
    exact = toy.ridge_fit(reg.x[keep], reg.y[keep], 0.05) - theta
    delta = gl.influence(problem.objective, problem.g, solver="direct").delta
    assert (delta - exact).norm() / exact.norm() < 1e-10


def test_loss_grid_layout(reg: toy.RegressionData) -> None:
    theta = torch.tensor([0.1, -0.2, 0.3, 0.4], dtype=torch.float64)
    a, b, z = toy.loss_grid(reg.x, reg.y, 0.1, theta, (1, 3), ((-1.0, 1.0), (0.0, 2.0)), num=7)
    assert z.shape == (7, 7)
    point = theta.clone()
    point[1], point[3] = a[2], b[5]
    assert float(z[5, 2]) == pytest.approx(float(toy.ridge_loss(reg.x, reg.y, 0.1, point)), rel=1e-12)
    with pytest.raises(ValueError):
        toy.loss_grid(reg.x, reg.y, 0.1, theta, (1, 1), ((-1.0, 1.0), (0.0, 2.0)))
