"""Toy problems with closed-form answers: correlated linear regression, ridge retraining, loss contours.

Used by: first_order, nuisance.

Linear regression with the half squared error ``l_i(theta) = (x_i^T theta - y_i)^2 / 2`` and weight
decay ``lambda`` has the objective

    L(theta) = ||X theta - y||^2 / (2 n) + lambda / 2 ||theta||^2,

the constant Hessian ``H = X^T X / n + lambda I`` and the minimiser ``theta* = H^-1 X^T y / n``.
Retraining without a group is therefore one linear solve, and every influence estimate can be checked
against an exact answer.  The model is ``nn.Linear(dim, 1, bias=False)``, so the flat parameter vector
is ``theta`` itself.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..checks import GifLiteError, check_finite_number

__all__ = [
    "RegressionData",
    "correlated_regression",
    "half_squared_error",
    "linear_model",
    "loss_grid",
    "ridge_fit",
    "ridge_loss",
]


class RegressionData(NamedTuple):
    """Inputs ``x`` (n x dim), responses ``y`` (n) and the coefficients ``theta_true`` that made them."""

    x: torch.Tensor
    y: torch.Tensor
    theta_true: torch.Tensor


def half_squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of ``(output - target)^2 / 2`` (the loss whose Hessian is ``X^T X / n``)."""
    return 0.5 * (outputs.reshape(-1) - targets.reshape(-1)).pow(2).mean()


def correlated_regression(
    n: int,
    dim: int,
    rho: float = 0.8,
    noise: float = 0.5,
    seed: int = 0,
    theta_true: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> RegressionData:
    """Gaussian features with covariance ``Sigma_jk = rho^|j-k|`` and ``y = X theta_true + noise * eps``.

    ``theta_true`` defaults to a seeded standard normal draw.
    """
    for name, value in (("n", n), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GifLiteError(f"{name} must be a positive int, got {value!r}")
    if not -1.0 < rho < 1.0:
        raise GifLiteError(f"rho must lie in (-1, 1), got {rho}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.arange(dim, dtype=dtype)
    cov = rho ** (idx[:, None] - idx[None, :]).abs()
    chol = torch.linalg.cholesky(cov)
    x = torch.randn(n, dim, generator=gen, dtype=dtype) @ chol.T
    if theta_true is None:
        theta_true = torch.randn(dim, generator=gen, dtype=dtype)
    if not isinstance(theta_true, torch.Tensor) or theta_true.shape != (dim,):
        got = tuple(theta_true.shape) if isinstance(theta_true, torch.Tensor) else type(theta_true).__name__
        raise GifLiteError(
            f"theta_true must be a tensor of shape ({dim},) (one entry per feature), got {got}"
        )
    theta_true = theta_true.to(dtype)
    y = x @ theta_true + noise * torch.randn(n, generator=gen, dtype=dtype)
    return RegressionData(x, y, theta_true)


def _check_xy(x: object, y: object, weight_decay: float) -> None:
    """``x`` (n x dim) and ``y`` (n,) floating tensors, ``weight_decay >= 0``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise GifLiteError(
            f"x must be a floating 2-D tensor (n x dim), got {getattr(x, 'shape', type(x).__name__)}"
        )
    if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1]:
        raise GifLiteError(
            f"y must be a tensor of shape ({x.shape[0]},), got {getattr(y, 'shape', type(y).__name__)}"
        )
    check_finite_number(weight_decay, "weight_decay", low=0.0)


def ridge_fit(x: torch.Tensor, y: torch.Tensor, weight_decay: float = 0.0) -> torch.Tensor:
    """The exact minimiser ``(X^T X / n + lambda I)^-1 X^T y / n`` of the objective above."""
    _check_xy(x, y, weight_decay)
    n, dim = x.shape
    h = x.T @ x / n + weight_decay * torch.eye(dim, dtype=x.dtype)
    return torch.linalg.solve(h, x.T @ y / n)


def ridge_loss(x: torch.Tensor, y: torch.Tensor, weight_decay: float, thetas: torch.Tensor) -> torch.Tensor:
    """``L(theta)`` for a batch of parameter vectors ``thetas`` (shape ``(..., dim)``), vectorised."""
    _check_xy(x, y, weight_decay)
    if not isinstance(thetas, torch.Tensor) or thetas.shape[-1:] != x.shape[1:]:
        raise GifLiteError(
            f"thetas must have shape (..., {x.shape[1]}), got {getattr(thetas, 'shape', thetas)}"
        )
    residuals = thetas @ x.T - y  # (..., n)
    return 0.5 * residuals.pow(2).mean(-1) + 0.5 * weight_decay * thetas.pow(2).sum(-1)


def linear_model(theta: torch.Tensor) -> nn.Linear:
    """``nn.Linear(dim, 1, bias=False)`` whose weight is ``theta`` (same dtype)."""
    if not isinstance(theta, torch.Tensor) or theta.dim() != 1 or not theta.is_floating_point():
        raise GifLiteError(
            f"theta must be a floating 1-D tensor, got {getattr(theta, 'shape', type(theta).__name__)}"
        )
    model = nn.Linear(theta.numel(), 1, bias=False).to(theta.dtype)
    with torch.no_grad():
        model.weight.copy_(theta.reshape(1, -1))
    return model


def loss_grid(
    x: torch.Tensor,
    y: torch.Tensor,
    weight_decay: float,
    theta: torch.Tensor,
    plane: tuple[int, int],
    lims: tuple[tuple[float, float], tuple[float, float]],
    num: int = 120,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``L`` on a ``num x num`` grid over coordinates ``plane`` of ``theta``, the others held at ``theta``.

    Returns ``(a, b, z)`` with ``z[i, j] = L(theta with theta[plane[0]] = a[j], theta[plane[1]] = b[i])``,
    the layout ``matplotlib.pyplot.contour(a, b, z)`` expects.
    """
    i, j = plane
    if i == j:
        raise GifLiteError("plane needs two different coordinates")
    a = torch.linspace(lims[0][0], lims[0][1], num, dtype=theta.dtype)
    b = torch.linspace(lims[1][0], lims[1][1], num, dtype=theta.dtype)
    grid = theta.expand(num, num, theta.numel()).clone()
    grid[:, :, i] = a[None, :]
    grid[:, :, j] = b[:, None]
    return a, b, ridge_loss(x, y, weight_decay, grid)
