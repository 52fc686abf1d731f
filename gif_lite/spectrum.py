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

The GIF paper's Figure 3 reports a different quantity, :func:`top_magnitude_negative_share`: the share
of negative values among the ``k = 300`` eigenvalues of largest magnitude (ARPACK's implicitly restarted
Lanczos, ``which="LM"``), not among all ``n`` eigenvalues.  The two can differ by orders of magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from . import checks
from .types import MatVec

__all__ = [
    "LanczosResult",
    "lanczos",
    "lanczos_steps",
    "negative_eigenvalue_fraction",
    "spectral_quadrature",
    "top_magnitude_eigenvalues",
    "top_magnitude_negative_share",
]


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


def lanczos_steps(
    matvec: MatVec,
    q: torch.Tensor,
    steps: int,
    *,
    restart: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[float], list[float]]:
    """The one Lanczos loop: ``steps`` fully reorthogonalised steps from the unit vector ``q``.

    Returns the basis ``Q`` (rows ``q_1 .. q_k``), the diagonal ``alpha`` and the off-diagonal ``beta`` of
    ``T_k = Q A Q^T``.  When the Krylov space becomes invariant (``beta_j <= 1e-12 * max |theta|``) it
    stops, or with a ``restart`` generator (``beta_j <= 1e-10 * max |theta|``) continues from a random
    vector orthogonal to ``Q`` with ``beta_j = 0``, so ``steps = n`` always spans everything (a low-rank
    operator needs all ``steps`` vectors; eigenvalue estimates need only the invariant part).
    """
    n = q.numel()
    basis = torch.empty(steps, n, dtype=q.dtype, device=q.device)
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    cut = 1e-12 if restart is None else 1e-10
    for j in range(steps):
        basis[j] = q
        w = matvec(q).to(q.dtype)
        alphas.append(float(q @ w))
        # w -= Q_j (Q_j^T w), twice ("twice is enough"): removes alpha q_j, beta q_{j-1} and round-off
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        scale = max(scale, abs(alphas[-1]), beta)
        if j == steps - 1 or (restart is None and beta <= cut * scale):
            break
        if beta <= cut * scale:  # invariant subspace (repeated eigenvalues): restart orthogonally, beta = 0
            w = torch.randn(n, generator=restart, dtype=q.dtype).to(q.device)
            for _ in range(2):
                w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
            beta, w = 0.0, w / w.norm()
            betas.append(beta)
            q = w
            continue
        betas.append(beta)
        q = w / beta
    return basis[: len(alphas)], alphas, betas


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
        raise checks.GifLiteError(f"n must be >= 1, got {n}")
    if steps < 1:
        raise checks.GifLiteError(f"steps must be >= 1, got {steps}")
    steps = min(steps, n)
    if start is None:
        q = _random_unit(n, seed, dtype, device)
    else:
        if start.shape != (n,):
            raise checks.GifLiteError(f"start must have shape ({n},), got {tuple(start.shape)}")
        if float(start.norm()) == 0.0:
            raise checks.GifLiteError("start must be a nonzero vector")
        q = (start / start.norm()).to(device=device, dtype=dtype)
    _, alphas, betas = lanczos_steps(matvec, q, steps)
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
        raise checks.GifLiteError(f"probes must be >= 1, got {probes}")
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
        raise checks.GifLiteError(f"threshold must be >= 0, got {threshold}")
    nodes, weights = spectral_quadrature(matvec, n, steps, probes, seed, dtype=dtype, device=device)
    return float(weights[nodes < -threshold].sum())


def top_magnitude_eigenvalues(
    matvec: MatVec,
    n: int,
    k: int = 300,
    seed: int = 0,
    *,
    tol: float = 0.0,
    max_iter: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The ``k`` eigenvalues of largest ``|mu|`` (ascending), by ARPACK's restarted Lanczos (``which="LM"``).

    ``k`` must be below ``n`` (ARPACK's limit; use ``torch.linalg.eigvalsh`` on the dense matrix
    otherwise).  ``tol=0`` asks for machine precision.  The start vector is Gaussian, drawn with ``seed``.
    Raises ``scipy.sparse.linalg.ArpackNoConvergence`` if ``max_iter`` restarts do not suffice.
    """
    if n < 2:
        raise checks.GifLiteError(f"n must be >= 2, got {n}")
    if not 1 <= k < n:
        raise checks.GifLiteError(
            f"k must satisfy 1 <= k < n = {n}, got {k}; for k >= n use torch.linalg.eigvalsh"
        )

    def apply(x: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        v = torch.from_numpy(flat).to(dtype=dtype, device=device)
        return matvec(v).detach().to("cpu", torch.float64).numpy()

    op = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    values = eigsh(op, k=k, which="LM", tol=tol, maxiter=max_iter, v0=v0, return_eigenvectors=False)
    return torch.from_numpy(np.sort(values))


def top_magnitude_negative_share(
    matvec: MatVec,
    n: int,
    k: int = 300,
    threshold: float = 1e-8,
    seed: int = 0,
    *,
    tol: float = 0.0,
    max_iter: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> float:
    """The GIF paper's Figure 3 metric: ``#{mu < -threshold among the k largest |mu|} / k``.

    This is the paper's ``negative_eigval_rate.py`` (ARPACK ``which="LM"``, ``k = 300``, threshold
    ``1e-8``), run to convergence.  It is *not* the share of negative eigenvalues in the whole
    spectrum (:func:`negative_eigenvalue_fraction` estimates that): the large-magnitude end of a
    trained network's spectrum is dominated by its few large positive outliers and by its most negative
    eigenvalues, while the bulk near zero, where most negative eigenvalues sit, is left out.
    """
    if threshold < 0:
        raise checks.GifLiteError(f"threshold must be >= 0, got {threshold}")
    values = top_magnitude_eigenvalues(
        matvec, n, k, seed, tol=tol, max_iter=max_iter, dtype=dtype, device=device
    )
    return float((values < -threshold).double().mean())
