"""Shared fixtures: one thread per test, and float64 oracles (two tiny models whose dense Hessians are exact and cheap).

The plain helpers behind them live in tests/helpers/fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from helpers.fixtures import blobs
from torch import nn
from torch.nn import functional as F

import gif_lite as gl

torch.set_num_threads(1)  # tiny models: one thread is fastest and immune to oversubscription


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Every test starts on one thread, and a test that changes the count gets it restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return blobs()


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
