"""chapter_utils: comparisons, bootstrap intervals, checked bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gif_lite.book.chapter_utils import (
    Interval,
    bound,
    cos,
    glue_table,
    mean_ci,
    paired_ci,
    rel,
    verdict,
)


def test_cos_and_rel_against_hand_values() -> None:
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])
    assert cos(a, b) == pytest.approx(1 / np.sqrt(2))
    assert cos(a, torch.zeros(2)) == 0.0
    assert rel(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])) == pytest.approx(np.sqrt(2) / 2)


def test_mean_ci_is_deterministic_and_covers_the_mean() -> None:
    values = [0.81, 0.84, 0.79, 0.88, 0.83]
    ci = mean_ci(values)
    assert ci == mean_ci(values)
    assert ci.n == 5 and ci.lo < ci.mean < ci.hi
    assert ci.mean == pytest.approx(np.mean(values))
    assert min(values) <= ci.lo and ci.hi <= max(values)


def test_mean_ci_coverage_on_normal_draws() -> None:
    rng = np.random.default_rng(1)
    hits = sum(mean_ci(rng.normal(0.0, 1.0, 30), seed=k).contains(0.0) for k in range(200))
    assert 0.88 <= hits / 200 <= 0.99


def test_paired_ci_and_verdict() -> None:
    a, b = [1.0, 1.1, 1.2, 1.05, 1.15], [0.5, 0.6, 0.55, 0.58, 0.52]
    assert verdict(paired_ci(a, b), ("GIF", "FIF")) == "GIF > FIF"
    assert verdict(paired_ci(b, a), ("GIF", "FIF")) == "GIF < FIF"
    assert "within noise" in verdict(Interval(0.0, -0.1, 0.1, 5))
    with pytest.raises(ValueError, match="equal lengths"):
        paired_ci([1.0], [1.0, 2.0])


def test_bound_asserts_and_prints_the_claim_only() -> None:
    assert bound("rel. error", 3.2e-12, 1e-10) == "rel. error < 1e-10"
    with pytest.raises(AssertionError, match="not below"):
        bound("rel. error", 2e-9, 1e-10)
    with pytest.raises(AssertionError):
        bound("rel. error", float("nan"), 1e-10)


def test_interval_format() -> None:
    assert Interval(0.5, 0.41, 0.6, 5).format(2) == "0.50 [0.41, 0.60]"


def test_glue_table_rounds_and_returns_the_frame() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("myst_nb")
    df = pd.DataFrame({"F1": [0.123456, 0.5]}, index=["GIF", "FIF"])
    shown = glue_table("tbl_test", df, digits=2)
    assert list(shown["F1"]) == [0.12, 0.5]
