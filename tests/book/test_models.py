"""Tests of gif_lite.book.models: shapes, sizes, allowed layers, the registry and seeded initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gif_lite.book.models import (
    MLP,
    MODELS,
    LogisticRegression,
    TinyCNN,
    build_model,
    resnet18,
    vgg11,
)
from gif_lite.params import count_parameters, flat_params, reset_parameters

SMALL_LAYERS = (nn.Conv2d, nn.Linear, nn.ReLU, nn.Tanh, nn.Flatten, nn.Sequential)


def test_logistic_regression_is_one_linear_layer_on_flattened_input() -> None:
    model = LogisticRegression(64, 10)
    x = torch.randn(5, 1, 8, 8)
    assert torch.allclose(model(x), x.flatten(1) @ model.linear.weight.T + model.linear.bias)
    assert count_parameters(model) == 64 * 10 + 10


def test_mlp_layout_and_activation() -> None:
    model = MLP((64, 32, 10), activation="tanh")
    assert count_parameters(model) == 2410
    kinds = [type(m) for m in model.layers]
    assert kinds == [nn.Flatten, nn.Linear, nn.Tanh, nn.Linear]  # no activation after the output layer
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match="activation"):
        MLP(activation="swishy")
    with pytest.raises(ValueError, match="sizes"):
        MLP((10,))


@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32)])
def test_tiny_cnn_is_small_and_uses_only_influence_friendly_layers(in_channels: int, size: int) -> None:
    model = TinyCNN(in_channels=in_channels, input_size=size)
    assert model(torch.randn(2, in_channels, size, size)).shape == (2, 10)
    assert 3_000 <= count_parameters(model) <= 30_000
    for module in model.modules():
        assert isinstance(module, (TinyCNN, *SMALL_LAYERS)), type(module)
    assert sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()) == 4


def test_tiny_cnn_default_size_is_documented() -> None:
    assert count_parameters(TinyCNN()) == 11_018


@pytest.mark.parametrize("factory", [resnet18, vgg11])
@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32)])
def test_paper_models_accept_mnist_and_cifar_shapes(factory, in_channels: int, size: int) -> None:
    model = factory(in_channels=in_channels, num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, in_channels, size, size)).shape == (2, 10)
    expected = {resnet18: 11_172_810, vgg11: 9_229_962}[factory]
    extra_stem = (in_channels - 1) * 64 * 9  # the first conv's extra input channels
    assert count_parameters(model) == expected + extra_stem


def test_build_model_registry_aliases_and_errors() -> None:
    assert set(MODELS) == {"logistic", "mlp", "tinycnn", "tinynet", "fcn", "resnet18", "vgg11"}
    assert isinstance(build_model("Tiny-CNN"), TinyCNN)
    assert isinstance(build_model("logistic_regression", in_features=4, num_classes=3), LogisticRegression)
    with pytest.raises(
        ValueError, match="valid names: logistic, mlp, tinycnn, tinynet, fcn, resnet18, vgg11"
    ):
        build_model("alexnet")


def test_seeded_construction_and_reset_are_reproducible_and_leave_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build_model("tinycnn", seed=7)
    b = build_model("tinycnn", seed=7)
    c = build_model("tinycnn", seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(flat_params(a), flat_params(b))
    assert not torch.equal(flat_params(a), flat_params(c))
    reset_parameters(c, seed=7)
    assert torch.equal(flat_params(a), flat_params(c))
    assert torch.equal(torch.get_rng_state(), state)


def test_tinynet_is_the_papers_table3_network() -> None:
    from gif_lite.book.models import TinyNet

    model = build_model("TinyNet", seed=0)
    assert isinstance(model, TinyNet) and count_parameters(model) == 398_090
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linear] == [(2 * 2 * 256, 10)]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_fully_connected_net_is_the_papers_figure3_network() -> None:
    from gif_lite.book.models import FullyConnectedNet

    model = build_model("FullyConnectedNet", input_size=784, hidden_size=8, output_size=10)
    assert isinstance(model, FullyConnectedNet) and count_parameters(model) == 6_442
    kinds = [type(m) for m in model.layers]
    # no nonlinearity after the first layer, and no Dropout with three layers
    assert kinds == [nn.Flatten, nn.Linear, nn.Linear, nn.ReLU, nn.Linear]
    deeper = FullyConnectedNet(784, 8, 10, num_layers=5, dropout=0.1)
    assert sum(isinstance(m, nn.Dropout) for m in deeper.layers) == 1  # after every third block
    with pytest.raises(ValueError, match="num_layers"):
        FullyConnectedNet(num_layers=1)


def test_tinynet_width_scales_its_channels_for_smoke_runs() -> None:
    from gif_lite.book.models import TinyNet

    assert count_parameters(TinyNet(width=32)) == 398_090  # the paper's
    small = TinyNet(width=4)
    assert [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 16, 32]
    assert count_parameters(small) == 7_434 and small(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="width"):
        TinyNet(width=0)
