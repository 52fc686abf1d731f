"""Tests of gif_lite.book.gradcam: Grad-CAM against a case computed by hand, feature maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gif_lite.book.gradcam import feature_maps, grad_cam, strongest_channel

# Two 2 x 2 input channels; a 1x1 identity convolution copies them, so the activations A are the input.
X = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[0.0, 3.0], [1.0, 0.0]]], dtype=torch.float64)
# Class 0 weighs channel 1 by (2, 0, 0, 2) (mean 1) and channel 2 by (-1, 0, 0, -1) (mean -0.5);
# class 1 weighs channel 1 by -1 everywhere and channel 2 by +1 everywhere.
W = torch.tensor([[2.0, 0, 0, 2, -1, 0, 0, -1], [-1.0, -1, -1, -1, 1, 1, 1, 1]], dtype=torch.float64)


def _net(bias: tuple[float, float] = (0.0, 0.0), relu: bool = False) -> nn.Sequential:
    conv = nn.Conv2d(2, 2, kernel_size=1, bias=False).double()
    linear = nn.Linear(8, 2).double()
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2, dtype=torch.float64).reshape(2, 2, 1, 1))
        linear.weight.copy_(W)
        linear.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    layers = [conv, nn.ReLU()] if relu else [conv]
    return nn.Sequential(*layers, nn.Flatten(), linear).eval()


def test_grad_cam_hand_computed() -> None:
    # Logits: y0 = 2*1 + 2*2 = 6, y1 = -(1 + 2) + (3 + 1) = 1, so the predicted class is 0.
    # alpha = (1, -0.5): CAM = relu(A1 - 0.5 A2) = relu([[1, -1.5], [-0.5, 2]]) = [[1, 0], [0, 2]].
    net = _net()
    assert net(X[None]).argmax().item() == 0
    raw = grad_cam(net, net[0], X[None], normalize=False)
    assert len(raw) == 1 and raw[0].shape == (1, 2, 2)
    torch.testing.assert_close(raw[0][0], torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    (cam,) = grad_cam(net, [net[0]], X[None])  # normalised by the maximum, 2
    torch.testing.assert_close(cam[0], torch.tensor([[0.5, 0.0], [0.0, 1.0]], dtype=torch.float64))
    # Class 1: alpha = (-1, 1): relu(A2 - A1) = relu([[-1, 3], [1, -2]]) = [[0, 3], [1, 0]].
    (cam1,) = grad_cam(net, net[0], X[None], target=1, normalize=False)
    torch.testing.assert_close(cam1[0], torch.tensor([[0.0, 3.0], [1.0, 0.0]], dtype=torch.float64))


def test_grad_cam_explains_the_predicted_class_and_ignores_the_bias() -> None:
    # A bias of 10 on class 1 makes it the prediction (11 > 6) without changing either class's map.
    net = _net(bias=(0.0, 10.0))
    (cam,) = grad_cam(net, net[0], X[None], normalize=False)
    torch.testing.assert_close(cam[0], torch.tensor([[0.0, 3.0], [1.0, 0.0]], dtype=torch.float64))


def test_grad_cam_batch_gives_one_map_per_image_for_its_own_class() -> None:
    # The second image swaps the channels: y0 = -(1 + 2) = -3, y1 = -(3 + 1) + (1 + 2) = -1,
    # so it is explained for class 1: relu(A2 - A1) = relu([[1, -3], [-1, 2]]) = [[1, 0], [0, 2]].
    net = _net()
    batch = torch.stack([X, X.flip(0)])
    (cam,) = grad_cam(net, net[0], batch, normalize=False)
    torch.testing.assert_close(cam[0], torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(cam[1], torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    (one,) = grad_cam(net, net[0], batch[1:], normalize=False)
    torch.testing.assert_close(cam[1:], one)
    (fixed,) = grad_cam(net, net[0], batch, target=torch.tensor([1, 0]), normalize=False)
    torch.testing.assert_close(fixed[0], torch.tensor([[0.0, 3.0], [1.0, 0.0]], dtype=torch.float64))


def test_grad_cam_at_a_relu_and_resized() -> None:
    net = _net(relu=True)  # the input is non-negative, so the ReLU passes A unchanged
    (cam,) = grad_cam(net, net[1], X[None], size="input")
    assert cam.shape == (1, 2, 2)
    (big,) = grad_cam(net, net[1], X[None], size=(4, 4))
    expected = F.interpolate(
        torch.tensor([[[[0.5, 0.0], [0.0, 1.0]]]], dtype=torch.float64), size=(4, 4), mode="bilinear"
    )[0]
    torch.testing.assert_close(big, expected)


def test_grad_cam_nowhere_positive_stays_zero() -> None:
    net = _net()
    x = torch.zeros_like(X)
    x[0] = 1.0  # A2 = 0, so class 1's map relu(A2 - A1) = relu(-1) is zero everywhere
    (cam,) = grad_cam(net, net[0], x[None], target=1)
    assert torch.equal(cam, torch.zeros(1, 2, 2, dtype=torch.float64))


def test_grad_cam_matches_autograd_on_a_random_cnn() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 5),
    ).double().eval()  # fmt: skip
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    before = [p.detach().clone() for p in net.parameters()]
    cams = grad_cam(net, [net[1], net[3]], x, normalize=False)
    for n in range(3):
        a1 = net[1](net[0](x[n : n + 1]))
        a2 = net[3](net[2](a1))
        y = net[5](net[4](a2))[0]
        g1, g2 = torch.autograd.grad(y[y.argmax()], [a1, a2])
        for cam, a, g in ((cams[0], a1, g1), (cams[1], a2, g2)):
            expected = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))[0]
            torch.testing.assert_close(cam[n], expected.detach())
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True))
    assert all(p.grad is None for p in net.parameters())


def test_grad_cam_errors() -> None:
    net = _net()
    with pytest.raises(ValueError, match="not a module"):
        grad_cam(net, nn.ReLU(), X[None])
    with pytest.raises(ValueError, match="batch of images"):
        grad_cam(net, net[0], X)
    with pytest.raises(ValueError, match="target"):
        grad_cam(net, net[0], X[None], target=2)
    with pytest.raises(ValueError, match="maps"):
        grad_cam(net, net[2], X[None])  # Flatten outputs vectors
    with pytest.raises(ValueError, match="size"):
        grad_cam(net, net[0], X[None], size="big")


def test_feature_maps_and_strongest_channel() -> None:
    net = _net(relu=True)
    (maps,) = feature_maps(net, X[None])
    torch.testing.assert_close(maps[0], X)
    # spatial means: channel 1 (1 + 2) / 4 = 0.75, channel 2 (3 + 1) / 4 = 1.0
    assert strongest_channel(maps).tolist() == [1]
    with pytest.raises(ValueError, match="no ReLU"):
        feature_maps(_net(), X[None])
    with pytest.raises(ValueError, match="shape"):
        strongest_channel(maps[0])
