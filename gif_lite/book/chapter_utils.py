"""Small utilities every chapter shares: vector comparisons, bootstrap intervals over seeds, and
checked output that holds on any CPU.

Used by: every chapter (instead of per-chapter copies of ``cos``, ``rel`` and interval code).

Checked cells (``# NBVAL_CHECK_OUTPUT``) must print what a rerun on another CPU kernel family keeps:
exact-algebra checks as a bound (:func:`bound`), numbers from trained models as a mean with a 95%
bootstrap interval over seeds (:func:`mean_ci`), rounded to a precision the claim needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..checks import GifLiteError, GifLiteTypeError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Interval", "bound", "cos", "glue_table", "mean_ci", "paired_ci", "rel", "verdict"]


def _pair(a: object, b: object, what: str) -> None:
    """Two tensors with the same number of entries (``what`` names the caller)."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor):
            raise GifLiteTypeError(f"{what}: {name} must be a tensor, got {type(t).__name__}")
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    if a.numel() != b.numel():
        raise GifLiteError(
            f"{what}: a and b must have the same size, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity a.b / (|a| |b|) of two tensors (flattened); 0 when either is zero."""
    _pair(a, b, "cos")
    a, b = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else 0.0


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error |a - b| / |b| of ``a`` against the reference ``b`` (|a - b| when b is zero)."""
    _pair(a, b, "rel")
    a, b = a.detach().double(), b.detach().double()
    den = float(b.norm())
    diff = float((a - b).norm())
    return diff / den if den > 0 else diff


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds with its 95% percentile-bootstrap interval [lo, hi]."""

    mean: float
    lo: float
    hi: float
    n: int

    def above(self, value: float) -> bool:
        """The whole interval lies above ``value``."""
        return self.lo > value

    def below(self, value: float) -> bool:
        """The whole interval lies below ``value``."""
        return self.hi < value

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def format(self, digits: int = 2) -> str:
        """``mean [lo, hi]`` rounded to ``digits`` decimals."""
        f = f"{{:.{digits}f}}".format
        return f"{f(self.mean)} [{f(self.lo)}, {f(self.hi)}]"

    def __str__(self) -> str:
        return self.format()


def _values(values: Iterable[float] | torch.Tensor | np.ndarray) -> np.ndarray:
    x = np.asarray(
        values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else list(values),
        dtype=np.float64,
    ).reshape(-1)
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise GifLiteError("mean_ci needs at least one non-nan value")
    return x


def mean_ci(
    values: Iterable[float] | torch.Tensor | np.ndarray,
    level: float = 0.95,
    n_boot: int = 4000,
    seed: int = 0,
) -> Interval:
    """Mean of ``values`` (one per seed; nan ignored) with a percentile-bootstrap interval.

    The resampling uses its own fixed generator, so the interval is a function of the values alone.
    """
    if not 0 < level < 1:
        raise GifLiteError(f"level must lie in (0, 1), got {level!r}")
    x = _values(values)
    if x.size == 1:
        return Interval(float(x[0]), float(x[0]), float(x[0]), 1)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(x.mean()), float(lo), float(hi), int(x.size))


def paired_ci(
    a: Sequence[float] | torch.Tensor | np.ndarray,
    b: Sequence[float] | torch.Tensor | np.ndarray,
    level: float = 0.95,
) -> Interval:
    """Interval of the mean paired difference a - b (seed by seed)."""
    a, b = _values(a), _values(b)
    if a.shape != b.shape:
        raise GifLiteError(f"paired values need equal lengths, got {a.size} and {b.size}")
    return mean_ci(a - b, level=level)


def verdict(diff: Interval, names: tuple[str, str] = ("A", "B")) -> str:
    """ "A > B", "A < B" or "A ~ B (within noise)" from the interval of the difference A - B."""
    if not isinstance(diff, Interval):
        raise GifLiteTypeError(
            f"diff must be an Interval (from mean_ci or paired_ci), got {type(diff).__name__}"
        )
    if diff.above(0):
        return f"{names[0]} > {names[1]}"
    if diff.below(0):
        return f"{names[0]} < {names[1]}"
    return f"{names[0]} ~ {names[1]} (within noise)"


def bound(name: str, value: float, limit: float) -> str:
    """Assert ``value < limit`` and return ``"name < limit"``: the checked form of an exact-algebra claim.

    The printed text depends only on the claim, not on the last digits a CPU kernel produces.
    """
    if not (math.isfinite(value) and value < limit):
        raise AssertionError(f"{name} = {value:.3e} is not below {limit:.0e}")
    return f"{name} < {limit:.0e}"


def _pipes(value: object) -> object:
    return value.replace("|", "\\|") if isinstance(value, str) else value


def glue_table(key: str, df: pd.DataFrame, digits: int | None = None) -> pd.DataFrame:
    """Show ``df`` (a pandas DataFrame) and glue it as Markdown under ``key`` for a numbered table.

    In the chapter's Markdown, number and caption it with
    ``:::{table} Caption.`` / ``:name: tbl-<chapter>-<slug>`` around a ``{glue:md} key`` block with
    ``:format: myst``; tag this cell ``remove-output`` so the rendered page shows the table once.
    """
    if type(df).__name__ != "DataFrame" or not hasattr(df, "to_markdown"):
        raise GifLiteTypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    from IPython.display import Markdown
    from myst_nb import glue

    shown = df.round(digits) if digits is not None else df
    escaped = shown.rename(index=_pipes, columns=_pipes).map(_pipes)  # a | would split a cell
    glue(key, Markdown(escaped.to_markdown()), display=False)
    return shown
