"""Backdoor poisoning helpers: trigger, poisoning, attack success rate, scores, relabelling second order."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book.backdoor import (
    add_trigger,
    attack_success_rate,
    f1,
    gif_family,
    paper_gif,
    paper_scores,
    paper_step_search,
    poison,
    relabel_scores,
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


# ---------------------------------------------------------------------------------- the paper's protocol
def test_paper_scores_are_on_training_images() -> None:
    x, _ = _images()
    y = torch.arange(40) % 3
    group = torch.tensor([1, 4, 7, 10])
    poisoned = x.clone()
    poisoned[group] = add_trigger(x[group])
    labels = y.clone()
    labels[group] = 2
    s = paper_scores(_CornerDetector(), (poisoned, labels), group, y[group], target=2)
    assert s["corrupt"] == 1.0 and s["relabel"] == float((y[group] == 2).double().mean())
    keep = torch.ones(40, dtype=torch.bool)
    keep[group] = False
    assert s["clean"] == float((labels[keep] == 0).double().mean())  # the detector says 0 on clean images
    assert s["f1"] == pytest.approx(f1(s["relabel"], s["clean"]))
    assert f1(0.0, 0.0) == 0.0 and f1(1.0, 0.5) == pytest.approx(2 / 3)


def test_paper_step_search_finds_the_best_multiple_and_restores() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    delta = torch.tensor([3.0, 4.0])  # unit direction (0.6, 0.8)

    def score(m: nn.Module) -> float:  # best at ||w|| = 2.0
        return -abs(float(m.weight.detach().norm()) - 2.0)

    step, best, path = paper_step_search(model, delta, None, score, 0.3, patience=3)
    assert step == pytest.approx(2.1) and best == pytest.approx(-0.1)
    assert len(path) == 7 + 3  # 0.3 ... 2.1, then three worse steps
    assert [r["step"] for r in path] == pytest.approx([0.3 * k for k in range(1, 11)])
    assert [r["f1"] for r in path] == pytest.approx([-abs(0.3 * k - 2.0) for k in range(1, 11)])
    assert float(model.weight.detach().abs().sum()) == 0.0
    assert paper_step_search(model, delta, None, score, increment=0.3, max_steps=2)[0] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        paper_step_search(model, torch.zeros(2), None, score)


def _block(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(30, 30, generator=gen, dtype=torch.float64)
    h = h @ h.T / 30 + torch.diag(torch.logspace(-4, 0, 30, dtype=torch.float64))
    return h[:, :8], torch.randn(30, generator=gen, dtype=torch.float64)


def test_gif_family_against_dense_least_squares() -> None:
    h_p, g = _block()
    fam = gif_family(h_p, g, iterations=(1, 8, 40), tikhonov=(0.1,))
    exact = torch.linalg.lstsq(h_p, g.unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(fam["exact"], exact, rtol=1e-8, atol=1e-10)
    assert torch.allclose(fam["LSQR-40"], exact, rtol=1e-6, atol=1e-8)
    hpg = h_p.T @ g
    assert float(fam["LSQR-1"] @ hpg) / float(fam["LSQR-1"].norm() * hpg.norm()) > 1 - 1e-12
    gamma = 0.1 * float(torch.linalg.matrix_norm(h_p, ord=2))
    tik = torch.linalg.solve(h_p.T @ h_p + gamma**2 * torch.eye(8, dtype=h_p.dtype), hpg)
    assert torch.allclose(fam["Tikhonov-0.1"], tik, rtol=1e-8, atol=1e-12)
    assert float(tik.norm()) < float(exact.norm())  # regularisation shortens the solution
    with pytest.raises(ValueError):
        gif_family(h_p, g[:5])


def test_paper_gif_is_the_matrix_free_landweber() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    y = torch.arange(50) % 3
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=0.01)
    g = torch.randn(obj.num_params, generator=gen, dtype=torch.float64)
    subset = torch.arange(0, obj.num_params, 3)
    with pytest.warns(gl.ConvergenceWarning):
        free = gl.generalized_influence(
            obj, g, subset, solver="landweber", max_iter=60, tol=1e-9, step_tol=1e-9
        )
    dense = paper_gif(obj.hessian_columns(subset), g, max_iter=60, normalizer_step=0.5)
    assert dense.iterations == free.iterations
    assert torch.allclose(dense.x, free.delta, rtol=1e-9, atol=1e-12)


def test_relabel_scores_in_one_pass() -> None:
    x, _ = _images()
    y = torch.arange(40) % 3
    model = _CornerDetector().train()
    s = relabel_scores(model, (x, y), target=2)
    assert model.training  # mode restored
    assert s["ASR"] == attack_success_rate(model, (x, y), target=2) == 1.0
    assert s["clean"] == float((y == 0).double().mean())  # the detector says 0 on clean images
    assert s["score"] == pytest.approx(s["clean"] - s["ASR"]) and "relabel" not in s
    poisoned = (add_trigger(x[:6]), y[:6])
    s2 = relabel_scores(model, (x, y), target=2, poisoned=poisoned)
    assert s2["relabel"] == float((y[:6] == 2).double().mean())  # triggered: all sent to 2
    assert {k: s2[k] for k in s} == s
    assert relabel_scores(model, (x, y), target=2, value=0.5)["ASR"] == 0.0
    with pytest.raises(ValueError):
        relabel_scores(model, (x, torch.full((40,), 2)), target=2)
