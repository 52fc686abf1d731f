"""Lanczos and stochastic Lanczos quadrature against torch.linalg.eigvalsh."""

from __future__ import annotations

import pytest
import torch
from helpers.fixtures import random_vector

import gif_lite as gl
from gif_lite.spectrum import lanczos, negative_eigenvalue_fraction, spectral_quadrature


def _symmetric(n: int = 60, negatives: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A dense symmetric matrix with known, well-separated eigenvalues (``negatives`` of them < 0)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eig = torch.cat([-torch.linspace(0.5, 3.0, negatives), torch.linspace(0.1, 10.0, n - negatives)])
    eig = eig.double().sort().values
    return (q * eig) @ q.T, eig


def test_full_lanczos_recovers_every_eigenvalue() -> None:
    a, _ = _symmetric()
    res = lanczos(lambda v: a @ v, a.shape[0], steps=a.shape[0], seed=1)
    assert res.steps == a.shape[0]
    assert torch.allclose(res.ritz_values, torch.linalg.eigvalsh(a), atol=1e-10)
    assert torch.allclose(res.weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_tridiagonal_is_projection() -> None:
    a, _ = _symmetric()
    res = lanczos(lambda v: a @ v, a.shape[0], steps=10, seed=0)
    assert res.tridiagonal().shape == (10, 10) and res.matvecs == 10
    # interlacing: Ritz values lie inside the spectrum
    eig = torch.linalg.eigvalsh(a)
    assert res.ritz_values.min() >= eig.min() - 1e-12 and res.ritz_values.max() <= eig.max() + 1e-12


def test_extremes_converge_first() -> None:
    a, eig = _symmetric(n=200, negatives=30)
    q = torch.linalg.eigh(a).eigenvectors
    eig = eig.clone()
    eig[0], eig[-1] = -6.0, 20.0  # isolated ends, as a Hessian's outliers usually are
    a = (q * eig) @ q.T
    ritz = lanczos(lambda v: a @ v, 200, steps=40, seed=0).ritz_values
    assert abs(float(ritz[0] - eig[0])) < 1e-8 and abs(float(ritz[-1] - eig[-1])) < 1e-8


def test_invariant_subspace_stops_early() -> None:
    a = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    res = lanczos(lambda v: a @ v, 4, steps=4, start=torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert res.steps == 2
    assert torch.allclose(res.ritz_values, torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_quadrature_estimates_negative_fraction() -> None:
    a, eig = _symmetric(n=300, negatives=60)
    est = negative_eigenvalue_fraction(lambda v: a @ v, 300, steps=40, probes=8, seed=0)
    assert abs(est - 0.2) < 0.05
    nodes, weights = spectral_quadrature(lambda v: a @ v, 300, steps=40, probes=8, seed=0)
    assert torch.isclose(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    trace = float((weights * nodes).sum()) * 300  # estimates trace(A) = sum of eigenvalues
    assert abs(trace - float(eig.sum())) < 0.1 * float(eig.abs().sum())


def test_lanczos_on_objective_hessian(nonconvex: gl.Objective) -> None:
    eig = torch.linalg.eigvalsh(nonconvex.hessian())
    scale = float(eig.abs().max())
    res = lanczos(nonconvex.hvp, nonconvex.num_params, steps=nonconvex.num_params, seed=0)
    # one start vector sees each distinct eigenvalue once: every Ritz value is an eigenvalue
    gaps = (res.ritz_values[:, None] - eig[None, :]).abs().min(dim=1).values
    assert float(gaps.max()) < 1e-8 * scale
    few = lanczos(nonconvex.hvp, nonconvex.num_params, steps=30, seed=0).ritz_values
    assert abs(float(few[0] - eig[0])) < 1e-6 * scale and abs(float(few[-1] - eig[-1])) < 1e-6 * scale


def test_start_vector_and_errors() -> None:
    a, _ = _symmetric(n=20, negatives=4)
    start = random_vector(20, seed=3)
    r1 = lanczos(lambda v: a @ v, 20, steps=5, start=start)
    r2 = lanczos(lambda v: a @ v, 20, steps=5, start=2 * start)
    assert torch.allclose(r1.ritz_values, r2.ritz_values)
    with pytest.raises(ValueError, match="steps"):
        lanczos(lambda v: a @ v, 20, steps=0)
    with pytest.raises(ValueError, match="shape"):
        lanczos(lambda v: a @ v, 20, steps=3, start=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="threshold"):
        negative_eigenvalue_fraction(lambda v: a @ v, 20, threshold=-1.0)


def test_top_magnitude_share_matches_dense_eigh() -> None:
    from gif_lite.spectrum import top_magnitude_eigenvalues, top_magnitude_negative_share

    a, eig = _symmetric(n=120, negatives=30)
    # the paper's metric from the dense spectrum: sort by |mu|, keep the k largest, count the negatives
    k = 40
    top = eig[eig.abs().argsort(descending=True)[:k]]
    dense_share = float((top < -1e-8).double().mean())
    values = top_magnitude_eigenvalues(lambda v: a @ v, 120, k=k, seed=0)
    assert torch.allclose(values, top.sort().values, atol=1e-8)
    share = top_magnitude_negative_share(lambda v: a @ v, 120, k=k, seed=0)
    assert share == pytest.approx(dense_share, abs=1e-12)
    # here it differs from the whole-spectrum share (30/120) since the largest |mu| are mostly positive
    assert abs(share - 30 / 120) > 0.05
    with pytest.raises(ValueError, match="k must"):
        top_magnitude_negative_share(lambda v: a @ v, 120, k=120)


def test_top_magnitude_share_on_objective_hessian(nonconvex: gl.Objective) -> None:
    from gif_lite.spectrum import top_magnitude_negative_share

    eig = torch.linalg.eigvalsh(nonconvex.hessian())
    k = max(1, nonconvex.num_params // 3)
    top = eig[eig.abs().argsort(descending=True)[:k]]
    expected = float((top < -1e-8).double().mean())
    assert top_magnitude_negative_share(nonconvex.hvp, nonconvex.num_params, k=k) == pytest.approx(expected)
