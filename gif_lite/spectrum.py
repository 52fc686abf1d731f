"""Eigenvalues of a symmetric operator from matrix-vector products: Lanczos and its quadrature.

Lanczos from a unit vector ``q_1`` builds an orthonormal basis ``Q_k = [q_1 .. q_k]`` of the Krylov
space ``span{q_1, A q_1, .., A^{k-1} q_1}`` and the tridiagonal ``T_k = Q_k^T A Q_k``:

    A q_j = beta_{j-1} q_{j-1} + alpha_j q_j + beta_j q_{j+1},   alpha_j = q_j^T A q_j.

The eigenvalues ``theta_1 <= .. <= theta_k`` of ``T_k`` (Ritz values) interlace those of ``A`` and
converge first at the two ends of the spectrum, so a few dozen steps give ``lambda_min`` and
``lambda_max`` of a Hessian with thousands of parameters.  With ``T_k = S diag(theta) S^T``, the weights
``tau_j = S[0, j]^2`` make ``(theta_j, tau_j)`` the k-point Gauss quadrature of the spectral measure of
``q_1``:  ``q_1^T f(A) q_1 = sum_i (u_i^T q_1)^2 f(lambda_i) ~ sum_j tau_j f(theta_j)``.  For a random
``q_1`` (Gaussian, normalised) ``E[(u_i^T q_1)^2] = 1/n``, so averaging over probes estimates the
eigenvalue distribution of ``A`` (stochastic Lanczos quadrature, e.g. the fraction of negative
eigenvalues) without ever forming ``A``.

Full reorthogonalisation keeps ``Q_k`` orthonormal in floating point (O(k n) memory), which is what
stops spurious copies of converged Ritz values ("ghosts") from appearing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .types import MatVec

__all__ = ["LanczosResult", "lanczos", "negative_eigenvalue_fraction", "spectral_quadrature"]


@dataclass
class LanczosResult:
    """``T_k``'s diagonal ``alpha`` and off-diagonal ``beta``, its eigenvalues and quadrature weights.

    ``ritz_values`` are ascending; ``weights[j] = S[0, j]^2`` (they sum to 1).  ``matvecs`` counts
    products with ``A``; ``steps`` is ``len(alpha)`` (fewer than asked if an invariant subspace was found).
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    ritz_values: torch.Tensor
    weights: torch.Tensor
    matvecs: int

    @property
    def steps(self) -> int:
        return int(self.alpha.numel())

    def tridiagonal(self) -> torch.Tensor:
        """The dense ``T_k`` (k x k)."""
        return torch.diag(self.alpha) + torch.diag(self.beta, 1) + torch.diag(self.beta, -1)


def _random_unit(n: int, seed: int, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=gen, dtype=dtype)
    return (v / v.norm()).to(device)


def lanczos(
    matvec: MatVec,
    n: int,
    steps: int,
    seed: int = 0,
    *,
    start: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> LanczosResult:
    """``steps`` Lanczos iterations on the symmetric ``n x n`` operator ``matvec``, fully reorthogonalised.

    Starts from ``start`` (normalised) or a Gaussian vector drawn with ``seed``.  Stops early when
    ``beta_j`` falls below ``1e-12 * max |theta|`` (the Krylov space is invariant: the Ritz values are
    then exact eigenvalues of ``A``).  Costs ``steps`` matvecs and O(steps * n) memory.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    steps = min(steps, n)
    if start is None:
        q = _random_unit(n, seed, dtype, device)
    else:
        if start.shape != (n,):
            raise ValueError(f"start must have shape ({n},), got {tuple(start.shape)}")
        if float(start.norm()) == 0.0:
            raise ValueError("start must be a nonzero vector")
        q = (start / start.norm()).to(device=device, dtype=dtype)
    basis = torch.empty(steps, n, dtype=q.dtype, device=q.device)
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    for j in range(steps):
        basis[j] = q
        w = matvec(q).to(q.dtype)
        alpha = float(q @ w)
        alphas.append(alpha)
        # w -= Q_j (Q_j^T w), twice ("twice is enough"): removes alpha q_j, beta q_{j-1} and round-off
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        scale = max(scale, abs(alpha), beta)
        if j == steps - 1 or beta <= 1e-12 * scale:
            break
        betas.append(beta)
        q = w / beta
    alpha_t = torch.tensor(alphas, dtype=torch.float64)
    beta_t = torch.tensor(betas, dtype=torch.float64)
    t = torch.diag(alpha_t) + torch.diag(beta_t, 1) + torch.diag(beta_t, -1)
    theta, s = torch.linalg.eigh(t)
    return LanczosResult(alpha_t, beta_t, theta, s[0] ** 2, len(alphas))


def spectral_quadrature(
    matvec: MatVec,
    n: int,
    steps: int = 80,
    probes: int = 4,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic Lanczos quadrature: nodes and weights approximating the eigenvalue distribution.

    Returns ``(nodes, weights)`` concatenated over ``probes`` Lanczos runs (seeds ``seed, seed+1, ..``),
    the weights divided by ``probes`` so they sum to 1: ``(1/n) sum_i f(lambda_i) ~ sum_j w_j f(node_j)``.
    """
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    nodes, weights = [], []
    for p in range(probes):
        res = lanczos(matvec, n, steps, seed + p, dtype=dtype, device=device)
        nodes.append(res.ritz_values)
        weights.append(res.weights / probes)
    return torch.cat(nodes), torch.cat(weights)


def negative_eigenvalue_fraction(
    matvec: MatVec,
    n: int,
    steps: int = 80,
    probes: int = 4,
    seed: int = 0,
    threshold: float = 0.0,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> float:
    """Estimate ``#{i : lambda_i < -threshold} / n`` by stochastic Lanczos quadrature.

    ``f = 1[lambda < -threshold]`` integrated with the quadrature of :func:`spectral_quadrature`.  The
    estimate is unbiased only up to the quadrature error of a step function: eigenvalues within the
    gap between two Ritz values around ``-threshold`` may be counted on either side, so use a
    ``threshold`` that separates the numerically-zero cluster (e.g. ``1e-6 * lambda_max``) and compare
    with the exact count (``torch.linalg.eigvalsh``) where the Hessian fits in memory.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    nodes, weights = spectral_quadrature(matvec, n, steps, probes, seed, dtype=dtype, device=device)
    return float(weights[nodes < -threshold].sum())
