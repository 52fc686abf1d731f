"""Tests of gif_lite.train: trainers, evaluation, retraining (checkpoints: tests/book/test_checkpoints.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite import train as gt
from gif_lite.book.configs import TINYCNN_RECIPE
from gif_lite.book.data import load_data
from gif_lite.book.models import build_model
from gif_lite.params import flat_params

CE = nn.CrossEntropyLoss()


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """600 digits, flattened, float64: small enough for L-BFGS to reach 1e-8 in well under a second."""
    x, y = load_data("digits", flatten=True, dtype=torch.float64).train
    return x[:600], y[:600]


@pytest.fixture(scope="module")
def fashion_small() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_data("fashion-mnist-small").train
    return x[:96], y[:96]


def _logistic(seed: int = 0) -> nn.Module:
    return build_model("logistic", in_features=64, num_classes=10, seed=seed).double()


def _objective_grad_norm(model: nn.Module, data, weight_decay: float) -> float:
    """||grad (mean CE + wd/2 ||theta||^2)||, computed independently of gif_lite.train."""
    params = list(model.parameters())
    loss = F.cross_entropy(model(data[0]), data[1]) + 0.5 * weight_decay * sum((p**2).sum() for p in params)
    grads = torch.autograd.grad(loss, params)
    return float(torch.cat([g.flatten() for g in grads]).norm())


class Spy:
    """A mean cross-entropy that records the targets of every call."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.seen.append(targets.clone())
        return F.cross_entropy(outputs, targets)


# ---------------------------------------------------------------------------------------------- L-BFGS


def test_lbfgs_reaches_a_stationary_point_of_the_regularised_objective(digits) -> None:
    model = _logistic()
    result = gt.train_lbfgs(model, CE, digits, weight_decay=1e-2, tol=1e-8, progress=False)
    assert result.converged and result.grad_norm < 1e-8
    assert _objective_grad_norm(model, digits, 1e-2) < 1e-8
    assert _objective_grad_norm(model, digits, 0.0) > 1e-4  # the weight-decay term really is in the objective
    assert result.loss == pytest.approx(
        gt.objective_value(model, CE, digits, weight_decay=1e-2)[0], rel=1e-12
    )
    assert len(result.history) == result.iterations and result.history[-1] <= result.history[0]


def test_lbfgs_warns_when_it_stops_short_and_returns_at_once_at_an_optimum(digits) -> None:
    model = _logistic()
    with pytest.warns(gt.TrainingWarning, match="max_iter=3"):
        short = gt.train_lbfgs(model, CE, digits, tol=1e-10, max_iter=3, progress=False)
    assert short.iterations == 3 and not short.converged
    gt.train_lbfgs(model, CE, digits, weight_decay=1e-2, tol=1e-8, progress=False)
    again = gt.train_lbfgs(model, CE, digits, weight_decay=1e-2, tol=1e-8, progress=False)
    assert again.iterations == 0 and again.converged


def test_objective_value_in_chunks_equals_full_batch(digits) -> None:
    model = _logistic(seed=3)
    full = gt.objective_value(model, CE, digits, weight_decay=0.1)
    chunked = gt.objective_value(model, CE, digits, weight_decay=0.1, batch_size=77)
    assert chunked == pytest.approx(full, rel=1e-12)
    assert full[1] == pytest.approx(_objective_grad_norm(model, digits, 0.1), rel=1e-12)


# ---------------------------------------------------------------------------------------------- mini-batch


@pytest.mark.parametrize("threads", [1, 2])
def test_minibatch_training_is_bit_reproducible(fashion_small, threads: int) -> None:
    torch.set_num_threads(threads)

    def run(seed: int) -> tuple[torch.Tensor, list[float]]:
        model = build_model("tinycnn", seed=0)
        recipe = TINYCNN_RECIPE  # cosine schedule, weight decay; keywords override its fields
        res = gt.train_minibatch(
            model, CE, fashion_small, recipe, epochs=2, batch_size=32, seed=seed, progress=False
        )
        return flat_params(model), res.history

    (theta_a, hist_a), (theta_b, hist_b), (theta_c, _) = run(0), run(0), run(1)
    assert torch.equal(theta_a, theta_b) and hist_a == hist_b
    assert not torch.equal(theta_a, theta_c)


def test_recipe_and_keywords_give_the_same_training(digits) -> None:
    recipe = gt.Recipe(epochs=2, batch_size=64, lr=0.05, optimizer="sgd", weight_decay=1e-3, schedule="step")
    a, b, c = _logistic(), _logistic(), _logistic()
    gt.train_minibatch(a, CE, digits, recipe, progress=False)
    gt.train_minibatch(b, CE, digits, epochs=2, batch_size=64, lr=0.05, optimizer="sgd", weight_decay=1e-3,
                       schedule="step", progress=False)  # fmt: skip
    gt.train_minibatch(c, CE, digits, recipe, lr=0.01, progress=False)  # a keyword overrides the recipe
    assert torch.equal(flat_params(a), flat_params(b))
    assert not torch.equal(flat_params(a), flat_params(c))
    with pytest.raises(TypeError, match="needs batch_size, lr"):
        gt.train_minibatch(a, CE, digits, epochs=1)


def test_step_schedule_is_steplr_30_by_a_tenth() -> None:
    from gif_lite.train import _scheduled_lr

    assert [_scheduled_lr("step", 0.1, 0, 1, e, 200) for e in (0, 29, 30, 65)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001]
    )


def test_multistep_schedule_is_the_papers_table3_multisteplr() -> None:
    from gif_lite.train import _scheduled_lr

    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(0.5 * 25), int(0.75 * 25)], gamma=0.1)
    reference = []
    for _ in range(25):
        reference.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [_scheduled_lr("multistep", 0.1, 0, 1, e, 25) for e in range(25)]
    assert ours == pytest.approx(reference)


def test_weight_decay_is_added_to_the_loss_not_given_to_the_optimizer(digits) -> None:
    """One plain SGD step on one full batch: theta1 = theta0 - lr * (grad mean loss + wd * theta0)."""
    model = _logistic(seed=1)
    theta0 = flat_params(model)
    x, y = digits
    params = list(model.parameters())
    grad = torch.cat([g.flatten() for g in torch.autograd.grad(F.cross_entropy(model(x), y), params)])
    res = gt.train_minibatch(
        model, CE, digits, epochs=1, batch_size=len(y), lr=0.5, optimizer="sgd", momentum=0.0,
        weight_decay=0.1, tol=1e3, progress=False,
    )  # fmt: skip
    assert torch.allclose(flat_params(model), theta0 - 0.5 * (grad + 0.1 * theta0), rtol=0, atol=1e-12)
    assert res.iterations == 1 and res.converged is True


def test_unknown_optimizer_or_schedule_is_rejected(digits) -> None:
    with pytest.raises(ValueError, match="'constant', 'cosine', 'step'"):
        gt.train_minibatch(_logistic(), CE, digits, epochs=1, batch_size=10, lr=0.1, schedule="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'adam', 'sgd'"):
        gt.train_minibatch(_logistic(), CE, digits, epochs=1, batch_size=10, lr=0.1, optimizer="rmsprop")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- evaluation


def test_evaluate_per_class_matches_a_direct_computation(digits) -> None:
    model = _logistic(seed=2)
    model.train()
    ev = gt.evaluate(model, digits, batch_size=100)
    assert model.training  # mode restored
    with torch.no_grad():
        out = model(digits[0])
    correct = out.argmax(1) == digits[1]
    losses = F.cross_entropy(out, digits[1], reduction="none")
    assert ev.accuracy == pytest.approx(float(correct.double().mean()))
    assert ev.loss == pytest.approx(float(losses.mean()))
    for c in range(10):
        members = digits[1] == c
        assert ev.per_class_accuracy[c] == pytest.approx(float(correct[members].double().mean()))
        assert ev.per_class_loss[c] == pytest.approx(float(losses[members].mean()))
    rest = digits[1] != 0
    assert ev.accuracy_without([0]) == pytest.approx(float(correct[rest].double().mean()))
    assert ev.accuracy_of([0]) == pytest.approx(float(ev.per_class_accuracy[0]))
    custom = gt.evaluate(model, digits, loss_fn=lambda o, t: F.cross_entropy(o, t))
    assert custom.loss == pytest.approx(ev.loss)


# ---------------------------------------------------------------------------------------------- retraining


def test_retrain_without_excludes_the_group_and_leaves_the_model_alone(digits) -> None:
    base = _logistic()
    gt.train_lbfgs(base, CE, digits, weight_decay=1e-2, tol=1e-8, progress=False)
    before = flat_params(base)
    group = (digits[1] == 0).nonzero().flatten()
    spy = Spy()
    new, res = gt.retrain_without(
        base, spy, digits, group, weight_decay=1e-2, tol=1e-8, progress=False, return_result=True
    )
    assert torch.equal(flat_params(base), before) and new is not base
    assert res.converged and spy.seen
    assert all(len(t) == len(digits[1]) - len(group) and not (t == 0).any() for t in spy.seen)
    # the same as training on the reduced data directly, from the same start
    direct = copy.deepcopy(base)
    gt.train_lbfgs(direct, CE, gt.drop_examples(digits, group), weight_decay=1e-2, tol=1e-8, progress=False)
    assert torch.allclose(flat_params(new), flat_params(direct), atol=1e-6)
    assert gt.evaluate(new, digits).per_class_accuracy[0] < gt.evaluate(base, digits).per_class_accuracy[0]


def test_retrain_from_scratch_is_seeded(digits) -> None:
    base = _logistic(seed=5)
    group = torch.arange(10)
    kwargs = dict(warm_start=False, trainer="minibatch", epochs=1, batch_size=50, lr=0.1, progress=False)
    a = gt.retrain_without(base, CE, digits, group, seed=3, **kwargs)
    b = gt.retrain_without(base, CE, digits, group, seed=3, **kwargs)
    c = gt.retrain_without(base, CE, digits, group, seed=4, **kwargs)
    assert torch.equal(flat_params(a), flat_params(b))
    assert not torch.equal(flat_params(a), flat_params(c))


def test_retrain_relabelled_trains_on_the_new_labels(digits) -> None:
    base = _logistic()
    group = torch.tensor([7, 3, 11])
    new_labels = torch.tensor([1, 2, 3])  # aligned with the group as given, not sorted
    calls: list[int] = []

    def trainer(model, loss_fn, data, **kwargs):
        calls.append(len(data[1]))
        assert kwargs == {"marker": 1}
        assert data[1][7] == 1 and data[1][3] == 2 and data[1][11] == 3
        assert torch.equal(data[1][20:], digits[1][20:])
        return gt.TrainResult(iterations=0, loss=0.0, grad_norm=0.0, converged=True)

    new = gt.retrain_relabelled(base, CE, digits, group, new_labels, trainer=trainer, marker=1)
    assert calls == [len(digits[1])] and new is not base
    spy = Spy()
    with pytest.warns(gt.TrainingWarning):
        gt.retrain_relabelled(base, spy, digits, group, 9, max_iter=2, progress=False)
    assert (spy.seen[0][group] == 9).all()


def test_group_validation(digits) -> None:
    with pytest.raises(ValueError, match="duplicated"):
        gt.drop_examples(digits, torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="lie in"):
        gt.drop_examples(digits, torch.tensor([len(digits[1])]))
    with pytest.raises(ValueError, match="every example"):
        gt.drop_examples(digits, torch.arange(len(digits[1])))
    mask = torch.zeros(len(digits[1]), dtype=torch.bool)
    mask[:5] = True
    assert len(gt.drop_examples(digits, mask)[1]) == len(digits[1]) - 5


def test_progress_bar_is_quiet_under_ci_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert gt.progress_enabled(None) is False
    assert gt.progress_enabled(True) is True
    monkeypatch.delenv("CI")
    assert gt.progress_enabled(False) is False


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model[0].bias.requires_grad_(False)  # frozen parameters are not part of theta
    return model


@pytest.mark.parametrize("batch_size", [None, 7])
def test_objective_value_is_the_objective(batch_size: int | None) -> None:
    """Training reports, and stops on, the same L(theta) and grad L that influence differentiates."""
    model = _small_model().double()
    x, y = torch.randn(30, 3, dtype=torch.float64), torch.randint(0, 2, (30,))
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=0.3)
    loss, grad_norm = gl.objective_value(
        model, F.cross_entropy, (x, y), weight_decay=0.3, batch_size=batch_size
    )
    assert loss == pytest.approx(obj.loss(), rel=1e-13)
    assert grad_norm == pytest.approx(float(obj.gradient().norm()), rel=1e-12)
    # and by hand: mean loss + wd/2 ||theta||^2, whose gradient autograd gives
    params = gl.trainable_parameters(model)
    by_hand = F.cross_entropy(model(x), y) + gl.l2_penalty(params, 0.3)
    grads = torch.autograd.grad(by_hand, params)
    assert float(by_hand) == pytest.approx(obj.loss(), rel=1e-13)
    assert torch.allclose(torch.cat([g.reshape(-1) for g in grads]), obj.gradient(), rtol=1e-12, atol=1e-14)
    assert float(gl.l2_penalty(params, 0.0)) == 0.0


def test_train_minibatch_refuses_bad_data_before_training_and_never_loses_the_model() -> None:
    """Non-finite inputs are refused before the first step; a label out of range in a late batch fails
    that step, and the model comes back exactly as it was handed over (weights, mode, gradients)."""
    import gif_lite.checks as gc

    model = _small_model().double()
    x, y = torch.randn(40, 3, dtype=torch.float64), torch.randint(0, 2, (40,))
    before = gc.ModelState(model)
    bad_x = x.clone()
    bad_x[33, 1] = float("nan")
    with pytest.raises(gl.GifLiteError, match="NaN"):
        gt.train_minibatch(model, F.cross_entropy, (bad_x, y), epochs=2, batch_size=8, lr=0.1, progress=False)
    assert gc.ModelState(model).same_as(before)
    bad_y = y.clone()
    bad_y[39] = 7  # only 2 classes: refused before the first step, naming the targets
    with pytest.raises(gl.GifLiteError, match=r"targets must be class labels in \[0, 2\)"):
        gt.train_minibatch(model, F.cross_entropy, (x, bad_y), epochs=2, batch_size=8, lr=0.1, progress=False)
    assert gc.ModelState(model).same_as(before)
    calls = []

    def fails_late(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 5:  # a step after four updates fails
            raise RuntimeError("late failure")
        return F.cross_entropy(out, t)

    with pytest.raises(RuntimeError, match="late failure"):
        gt.train_minibatch(model, fails_late, (x, y), epochs=2, batch_size=8, lr=0.1, progress=False)
    assert len(calls) == 5 and gc.ModelState(model).same_as(before)


# ---------------------------------------------------------------------------------------------- Newton


def test_newton_polish_reaches_the_optimum_that_lbfgs_approaches() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=gen, dtype=torch.float64)
    data = (x, torch.arange(40) % 3)

    def trained(tol: float) -> nn.Module:
        torch.manual_seed(0)
        model = nn.Linear(4, 3).double()
        gt.train_lbfgs(model, F.cross_entropy, data, weight_decay=0.1, tol=tol, progress=False)
        return model

    exact = flat_params(trained(1e-8))
    rough = trained(1e-3)
    norm = gt.newton_polish(rough, F.cross_entropy, data, weight_decay=0.1, tol=1e-12)
    assert norm < 1e-12
    assert _objective_grad_norm(rough, data, 0.1) < 1e-11  # measured independently
    # exact is only within 1e-8 / 0.1 of the optimum (the objective is 0.1-strongly convex)
    assert float((flat_params(rough) - exact).norm() / exact.norm()) <= 1e-6
    with pytest.warns(gt.TrainingWarning, match="Newton stopped"):
        gt.newton_polish(trained(1e-3), F.cross_entropy, data, weight_decay=0.1, tol=1e-30, max_steps=1)
