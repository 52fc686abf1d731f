"""The chapter's attribution baselines (gif_lite.book.attribution_baselines) on tiny exact cases."""

from __future__ import annotations

import torch
from helpers.fixtures import rel_err
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book import attribution_baselines as ab
from gif_lite.train import train_lbfgs


def _problem() -> tuple[nn.Linear, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=gen, dtype=torch.float64)
    y = torch.arange(40) % 3
    xt = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    model = nn.Linear(4, 3).double()
    train_lbfgs(model, F.cross_entropy, (x, y), weight_decay=0.1, tol=1e-8, progress=False)
    return model, (x, y), (xt, torch.arange(6) % 3)


def test_representer_values_add_up_to_the_logits_at_the_optimum() -> None:
    model, train, test = _problem()
    values = ab.representer_values(model, train, test, 0.1)
    with torch.no_grad():
        logits = model(test[0])[torch.arange(6), test[1]]
    assert rel_err(values.sum(1), logits) <= 1e-7


def test_gradient_similarity_and_tracin_are_gradient_dot_products() -> None:
    model, train, test = _problem()
    obj = gl.Objective(model, F.cross_entropy, train)
    sim = ab.gradient_similarity(obj, test)
    t = torch.cat([g for _, g in gl.example_gradients(obj, test)])
    g = torch.cat([g for _, g in gl.example_gradients(obj)])
    assert rel_err(sim, t @ g.T) <= 1e-12
    theta = gl.flat_params(model)
    both = ab.tracin(model, F.cross_entropy, train, test, [(theta, 0.5), (theta, 0.25)])
    assert rel_err(both, 0.75 * sim) <= 1e-12


def test_lds_is_one_for_an_exact_linear_datamodel_and_leave_one_out_sign() -> None:
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(5, 30, generator=gen, dtype=torch.float64)
    masks = torch.rand(20, 30, generator=gen) < 0.5
    losses = (scores @ (~masks).T.double()).T + 3.0  # exactly linear in the examples left out
    assert abs(ab.lds(scores, masks, losses) - 1.0) < 1e-12
    assert ab.lds(-scores, masks, losses) < -0.99
    model, train, test = _problem()
    obj = gl.Objective(model, F.cross_entropy, train, weight_decay=0.1)
    predicted = gl.removal_effects(obj, test).mean(0)[:3]
    actual = ab.leave_one_out(model, F.cross_entropy, train, test, [0, 1, 2], weight_decay=0.1, tol=1e-8)
    assert (torch.sign(predicted) == torch.sign(actual)).all()


def test_leave_one_out_with_newton_polish_goes_beyond_lbfgs() -> None:
    assert ab.newton_polish is gl.train.newton_polish  # one home, re-exported for the chapters
    model, train, test = _problem()
    polished = ab.leave_one_out(
        model, F.cross_entropy, train, test, [0, 1], weight_decay=0.1, tol=1e-4, newton_tol=1e-12
    )
    # L-BFGS alone stalls in its line search near 1e-9 here: Newton goes further
    lbfgs = ab.leave_one_out(model, F.cross_entropy, train, test, [0, 1], weight_decay=0.1, tol=1e-8)
    assert rel_err(polished, lbfgs) <= 1e-4
