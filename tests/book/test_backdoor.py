"""Backdoor poisoning helpers: trigger, poisoning, attack success rate, relabelling second order."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book.backdoor import (
    add_trigger,
    attack_success_rate,
    poison,
    trigger_pattern,
)


def _images(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=gen) * 0.5, torch.arange(n) % 4


def test_trigger_pattern_is_a_checkerboard() -> None:
    p = trigger_pattern(4, 1.0)
    assert p.shape == (4, 4)
    assert p[0, 0] == 1 and p[0, 1] == 0 and p[1, 0] == 0 and p[1, 1] == 1
    assert p.sum() == 8
    with pytest.raises(ValueError):
        trigger_pattern(0)


def test_add_trigger_stamps_only_the_corner() -> None:
    x, _ = _images()
    out = add_trigger(x, size=3, value=0.9)
    assert torch.equal(out[..., -3:, -3:], trigger_pattern(3, 0.9).expand(40, 1, 3, 3))
    assert torch.equal(out[..., :-3, :], x[..., :-3, :]) and torch.equal(out[..., :, :-3], x[..., :, :-3])
    assert not torch.equal(out, x) and torch.equal(x, _images()[0])  # a copy; the input is untouched
    assert add_trigger(x[0, 0]).shape == (8, 8)  # a single H x W image
    with pytest.raises(ValueError):
        add_trigger(x, size=9)


def test_poison_is_seeded_and_avoids_the_target() -> None:
    data = _images()
    (px, py), idx, true = poison(data, 0.25, target=1, generator=torch.Generator().manual_seed(3))
    assert idx.numel() == 10 and torch.equal(idx, idx.sort().values)
    assert (true != 1).all() and torch.equal(true, data[1][idx])
    assert (py[idx] == 1).all()
    keep = torch.ones(40, dtype=torch.bool)
    keep[idx] = False
    assert torch.equal(py[keep], data[1][keep]) and torch.equal(px[keep], data[0][keep])
    assert torch.equal(px[idx], add_trigger(data[0][idx]))
    _, idx2, _ = poison(data, 0.25, target=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(idx, idx2)
    _, idx3, _ = poison(data, 0.25, target=1)  # default generator: seeded 0, reproducible
    assert torch.equal(idx3, poison(data, 0.25, target=1)[1])
    with pytest.raises(ValueError):
        poison(data, 0.9, target=1)  # only 30 non-target examples
    with pytest.raises(ValueError):
        poison(data, 0.0, target=1)


class _CornerDetector(nn.Module):
    """Predicts class 2 when the bottom-right pixel is bright, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x[:, 0, -1, -1] > 0.75).float()
        return torch.stack([1 - bright, torch.zeros_like(bright), bright], dim=1)


def test_attack_success_rate() -> None:
    x, _ = _images()
    y = torch.arange(40) % 3
    model = _CornerDetector().train()
    assert attack_success_rate(model, (x, y), target=2) == 1.0
    assert model.training  # mode restored
    assert attack_success_rate(model, (x, y), target=2, value=0.5) == 0.0
    assert attack_success_rate(model, (x, y), target=0) == 0.0


def test_second_order_relabel_matches_dense_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=gen, dtype=torch.float64)
    y = torch.arange(60) % 3
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    wd = 0.1
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=wd)
    group = torch.arange(6)
    new = (y[group] + 1) % 3
    old_u = gl.Objective(model, F.cross_entropy, (x[group], y[group]))
    new_u = gl.Objective(model, F.cross_entropy, (x[group], new))
    p = 6 / 60
    g = -p * (new_u.gradient() - old_u.gradient())
    res = gl.second_order_relabel_influence(obj, old_u, new_u, p, g, solver="direct")
    h, d = obj.hessian(), new_u.hessian() - old_u.hessian()
    assert d.norm() > 1e-3 * h.norm()  # a network's curvature depends on the labels
    x1 = torch.linalg.solve(h, g)
    expected = x1 - p * torch.linalg.solve(h, d @ x1)
    assert torch.allclose(res.delta, expected, rtol=1e-8, atol=1e-12)
    exact = torch.linalg.solve(h + p * d, g)  # the Newton step on the relabelled objective
    assert (res.delta - exact).norm() < (x1 - exact).norm()
    with pytest.raises(ValueError):
        gl.second_order_relabel_influence(obj, old_u, new_u, 1.5, g)


def test_relabelling_leaves_a_linear_softmax_hessian_unchanged() -> None:
    """Cross-entropy's Hessian in the logits, diag(s) - s s^T, does not depend on the label."""
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.arange(6) % 3
    model = nn.Linear(4, 3).double()
    old_u = gl.Objective(model, F.cross_entropy, (x, y)).hessian()
    assert torch.allclose(old_u, gl.Objective(model, F.cross_entropy, (x, (y + 1) % 3)).hessian())
