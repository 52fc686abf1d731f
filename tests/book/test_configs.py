"""The one registry of paper-scale settings (gif_lite.book.configs)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

import gif_lite as gl
from gif_lite.book import configs


@pytest.mark.parametrize("name", sorted(configs.PAPER_CONFIGS))
def test_paper_configs_build_on_cpu(name: str) -> None:
    cfg = configs.paper_config(name)
    assert cfg.name == name and cfg.hessian_batch in (512, 2048)  # one batch; Table 3: 4 x 512
    model = cfg.build(seed=0).eval()
    channels = cfg.model_kwargs["in_channels"]
    side = 32 if cfg.data == "cifar10" else 28
    with torch.no_grad():
        out = model(torch.zeros(2, channels, side, side))
    assert out.shape == (2, 10)
    assert not any(f.name == "device" for f in dataclasses.fields(cfg))  # chapters pick the device


def test_unknown_config_is_refused() -> None:
    with pytest.raises(ValueError, match="valid: mnist-resnet18"):
        configs.paper_config("imagenet")


def test_the_papers_recipe_is_recorded() -> None:
    for cfg in configs.PAPER_CONFIGS.values():
        paper = cfg.paper_recipe
        assert (paper.optimizer, paper.lr, paper.momentum) == ("sgd", 0.1, 0.9)
        assert (paper.weight_decay, paper.batch_size) == (5e-4, 512)
        assert paper.epochs == (25 if cfg.protocol == "table3" else 200)
        assert cfg.recipe.epochs < paper.epochs  # the book's cheaper recipe
    assert configs.paper_config("cifar10-vgg11").paper_recipe.schedule == "cosine"
    assert configs.paper_config("mnist-resnet18").paper_recipe.schedule == "step"


def test_table3_setting_is_the_papers_tinynet_with_its_attack() -> None:
    cfg = configs.paper_config("mnist-tinynet")
    assert cfg.table == "Table 3" and cfg.fraction == 0.1 and cfg.target == 4 and cfg.ratios == (0.05,)
    assert cfg.recipe == configs.TINYCNN_RECIPE  # the book's cheaper recipe
    assert (cfg.paper_recipe.epochs, cfg.paper_recipe.schedule) == (25, "multistep")
    assert gl.param_layout(cfg.build()).num_params == 398_090
    for name in ("mnist-resnet18", "cifar10-vgg11"):
        assert configs.paper_config(name).fraction is None


def test_every_recipe_constant_lives_here() -> None:
    """A module-level ``Recipe(...)`` anywhere in gif_lite but this module is a second home for a recipe."""
    found = []
    for path in sorted(Path(gl.__file__).parent.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            call = value.func if isinstance(value, ast.Call) else None
            if isinstance(call, ast.Name) and call.id == "Recipe":
                found.append(path.name)
    assert found and set(found) == {"configs.py"}, found
    assert {configs.TINYCNN_RECIPE.epochs, configs.FIT_RECIPE.epochs} == {20, 10}
    assert configs.paper_config("mnist-tinynet").paper_recipe is configs.TABLE3_RECIPE
