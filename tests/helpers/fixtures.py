"""Shared test helpers: float64 toy data, random vectors and subsets, relative errors.

Plain functions, importable from any test as ``from helpers.fixtures import ...`` (``tests/`` is on
``sys.path`` through ``tests/conftest.py``, which builds the shared pytest fixtures from these).
"""

from __future__ import annotations

import torch


def blobs(n: int = 120, d: int = 5, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` Gaussian clusters in ``d`` dimensions, ``n`` float64 points with labels ``0..k-1`` in turn."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centers = torch.randn(k, d, generator=gen, dtype=torch.float64)
    x = centers[y] + 0.8 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, y


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||``."""
    return float((a - b).norm() / b.norm())


def random_vector(n: int, seed: int = 0) -> torch.Tensor:
    """A seeded standard-normal float64 vector of length ``n``."""
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def random_subset(n: int, k: int, seed: int = 0) -> torch.Tensor:
    """``k`` distinct sorted indices drawn from ``range(n)``, seeded."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values
