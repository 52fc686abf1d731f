"""Shared float64 oracles: two tiny models whose dense Hessians are exact and cheap."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl

torch.set_num_threads(1)  # tiny models: one thread is fastest and immune to oversubscription


def _blobs(n: int = 120, d: int = 5, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centers = torch.randn(k, d, generator=gen, dtype=torch.float64)
    x = centers[y] + 0.8 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, y


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return _blobs()


@pytest.fixture
def convex(data: tuple[torch.Tensor, torch.Tensor]) -> gl.Objective:
    """L2-regularised multinomial logistic regression: H positive definite."""
    torch.manual_seed(0)
    model = nn.Linear(5, 3).double()
    return gl.Objective(model, F.cross_entropy, data, weight_decay=0.05)


@pytest.fixture
def nonconvex(data: tuple[torch.Tensor, torch.Tensor]) -> gl.Objective:
    """A tanh MLP away from its optimum: H symmetric indefinite (asserted)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    obj = gl.Objective(model, F.cross_entropy, data, weight_decay=0.01)
    eig = torch.linalg.eigvalsh(obj.hessian())
    assert eig.min() < 0 < eig.max(), "fixture must be indefinite"
    return obj


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def random_vector(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def random_subset(n: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values
