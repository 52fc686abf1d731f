"""Objective: gradient, every HVP method and the dense Hessian against each other and autograd."""

from __future__ import annotations

import pytest
import torch
from helpers.fixtures import random_vector, rel_err
from torch import nn
from torch.nn import functional as F

import gif_lite as gl


def _fresh(obj: gl.Objective, method: str, batches: int = 1) -> gl.Objective:
    x, y = obj.batches[0]  # type: ignore[index]
    data = (x, y) if batches == 1 else list(zip(x.chunk(batches), y.chunk(batches)))
    return gl.Objective(obj.model, obj.loss_fn, data, obj.weight_decay, hvp_method=method)  # type: ignore[arg-type]


def test_dense_hessian_matches_torch_func(nonconvex: gl.Objective) -> None:
    x, y = nonconvex.batches[0]  # type: ignore[index]
    names = [n for n, _ in nonconvex.model.named_parameters()]
    shapes = [p.shape for p in nonconvex.params]
    theta = nonconvex.theta()

    def f(flat: torch.Tensor) -> torch.Tensor:
        parts, start = {}, 0
        for n, s in zip(names, shapes):
            parts[n] = flat[start : start + s.numel()].view(s)
            start += s.numel()
        out = torch.func.functional_call(nonconvex.model, parts, (x,))
        return F.cross_entropy(out, y) + 0.5 * nonconvex.weight_decay * flat @ flat

    expected = torch.autograd.functional.hessian(f, theta)
    assert rel_err(nonconvex.hessian(), expected) < 1e-12
    assert rel_err(nonconvex.gradient(), torch.func.grad(f)(theta)) < 1e-12


@pytest.mark.parametrize("method", gl.HVP_METHODS)
@pytest.mark.parametrize("batches", [1, 3])
def test_every_hvp_method_equals_dense_hessian_times_v(
    nonconvex: gl.Objective, method: str, batches: int
) -> None:
    obj = _fresh(nonconvex, method, batches)
    h = nonconvex.hessian()
    for seed in range(3):
        v = random_vector(obj.num_params, seed)
        assert rel_err(obj.hvp(v), h @ v) < 1e-12
    assert obj.hvp_calls == 3


def test_auto_method_choice(nonconvex: gl.Objective) -> None:
    assert _fresh(nonconvex, "auto").hvp_method == "reuse"
    assert _fresh(nonconvex, "auto", batches=2).hvp_method == "double_backward"


def test_kept_graph_follows_parameter_changes(nonconvex: gl.Objective) -> None:
    v = random_vector(nonconvex.num_params)
    before = nonconvex.hvp(v)
    gl.apply_update(nonconvex.model, 0.3 * random_vector(nonconvex.num_params, 5))
    after = nonconvex.hvp(v)
    assert rel_err(after, nonconvex.hessian() @ v) < 1e-12
    assert rel_err(after, before) > 1e-3


def test_batched_objective_equals_full_batch(nonconvex: gl.Objective) -> None:
    batched = _fresh(nonconvex, "double_backward", batches=4)
    assert abs(batched.loss() - nonconvex.loss()) < 1e-12
    assert rel_err(batched.gradient(), nonconvex.gradient()) < 1e-12


def test_dense_hessian_size_guard(nonconvex: gl.Objective) -> None:
    nonconvex.max_dense_params = 10
    with pytest.raises(MemoryError, match=r"needs .* GiB .* max_dense_params"):
        nonconvex.hessian()


def test_bad_inputs_are_named(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    model = nn.Linear(5, 3).double()
    with pytest.raises(ValueError, match="NaN"):
        gl.Objective(model, F.cross_entropy, (x.clone().fill_(float("nan")), y))
    with pytest.raises(ValueError, match="batch size"):
        gl.Objective(model, F.cross_entropy, (x, y[:-1]))
    with pytest.raises(ValueError, match="empty"):
        gl.Objective(model, F.cross_entropy, (x[:0], y[:0]))
    with pytest.raises(ValueError, match="hvp_method"):
        gl.Objective(model, F.cross_entropy, data, hvp_method="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight_decay"):
        gl.Objective(model, F.cross_entropy, data, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"model.eval\(\)"):
        gl.Objective(nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5)).double(), F.cross_entropy, data)
    obj = gl.Objective(model, F.cross_entropy, data)
    with pytest.raises(ValueError, match="length"):
        obj.hvp(torch.zeros(3, dtype=torch.float64))


def test_non_finite_loss_and_hvp_are_reported(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = nn.Linear(5, 3).double()

    def broken(out: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(out - 1e6).mean()  # square root of a negative number: NaN

    obj = gl.Objective(model, broken, data)
    with pytest.raises(FloatingPointError, match="loss is not finite"):
        obj.loss()
    with pytest.raises(FloatingPointError, match="damping"):
        obj.hvp(torch.ones(obj.num_params, dtype=torch.float64))


def test_hessian_columns_are_the_dense_block(nonconvex: gl.Objective) -> None:
    cols = torch.tensor([7, 0, 31, 12])
    assert rel_err(nonconvex.hessian_columns(cols, chunk=3), nonconvex.hessian()[:, cols]) < 1e-12


def test_kept_graph_survives_in_place_writes_that_restore_the_values(nonconvex: gl.Objective) -> None:
    v = random_vector(nonconvex.num_params)
    before = nonconvex.hvp(v)
    theta = gl.flat_params(nonconvex.model)
    gl.apply_update(nonconvex.model, torch.ones(nonconvex.num_params))  # e.g. a step search ...
    gl.set_flat_params(nonconvex.model, theta)  # ... that puts the parameters back
    assert rel_err(nonconvex.hvp(v), before) < 1e-12


class _NotAGradient(torch.autograd.Function):
    """A "loss" whose backward returns ``A theta`` with ``A`` not symmetric: its "Hessian" is ``A``."""

    @staticmethod
    def forward(ctx: object, theta: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(theta, a)  # type: ignore[attr-defined]
        return 0.5 * theta @ a @ theta

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        theta, a = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * (a @ theta), None


def test_an_asymmetric_hessian_is_reported_not_hidden() -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 1, bias=False).double()
    a = torch.tensor([[2.0, 1.0], [-1.0, 3.0]], dtype=torch.float64)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _NotAGradient.apply(model.weight.reshape(-1), a) + 0.0 * out.mean()

    obj = gl.Objective(model, loss, (torch.randn(4, 2, dtype=torch.float64), torch.zeros(4)))
    with pytest.warns(gl.GifLiteWarning, match="not symmetric"):
        h = obj.hessian()
    assert torch.allclose(h, 0.5 * (a + a.T))
