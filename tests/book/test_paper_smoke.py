"""The paper-scale path executes: smoke variants of every setting, and each Part II chapter run with
``SCALE = "paper"`` under ``GIF_BOOK_SMOKE=1`` on the CPU (tiny sizes, embedded data, same code path)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import gif_lite as gl
from gif_lite.book import configs
from gif_lite.book import experiments as ex
from gif_lite.book.checkpoints import CACHE_ENV
from gif_lite.book.data import load_data
from gif_lite.book.models import resnet18, vgg11

BOOK = Path(__file__).resolve().parents[2] / "book"
#: Each chapter's first code cell that sets SCALE, found by its tag; the smoke cell goes right after it.
SMOKE_CELL = 'SCALE = "paper"  # injected by tests/book/test_paper_smoke.py'


@pytest.mark.parametrize("name", sorted(configs.PAPER_CONFIGS))
def test_smoke_variant_keeps_the_code_path(name: str) -> None:
    paper = configs.paper_config(name, smoke=False)
    smoke = configs.paper_config(name, smoke=True)
    assert smoke.smoke and not paper.smoke and smoke.smoke_variant() is smoke
    assert smoke.model == paper.model and smoke.table == paper.table and smoke.ratios == paper.ratios
    recipe = smoke.recipe
    assert (recipe.optimizer, recipe.lr, recipe.schedule) == (
        paper.paper_recipe.optimizer,
        paper.paper_recipe.lr,
        paper.paper_recipe.schedule,
    )
    assert recipe.epochs == 1 and smoke.n_train == 256 and smoke.hessian_batch == 32
    splits = load_data(smoke.data, **smoke.data_kwargs)
    assert splits.input_shape == configs._SHAPES[paper.data]
    model = smoke.build(seed=0).eval()
    with torch.no_grad():
        assert model(splits.test[0][:3]).shape == (3, 10)


def test_smoke_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(configs.SMOKE_ENV, "1")
    assert configs.paper_config("mnist-resnet18").smoke
    monkeypatch.setenv(configs.SMOKE_ENV, "0")
    assert not configs.paper_config("mnist-resnet18").smoke
    monkeypatch.setenv(configs.SMOKE_ENV, "maybe")
    with pytest.raises(ValueError, match="GIF_BOOK_SMOKE"):
        configs.paper_config("mnist-resnet18")


def test_width_scales_the_papers_networks_and_64_is_the_paper() -> None:
    assert gl.count_parameters(resnet18(1)) == gl.count_parameters(resnet18(1, width=64))
    assert 11_000_000 < gl.count_parameters(resnet18(3)) < 11_300_000
    assert gl.count_parameters(resnet18(3, width=8)) < gl.count_parameters(resnet18(3)) / 50
    assert gl.count_parameters(vgg11(3, width=8)) < gl.count_parameters(vgg11(3)) / 50
    with pytest.raises(ValueError, match="multiple of 8"):
        resnet18(width=12)


def test_adapted_images_are_padded_and_channel_repeated() -> None:
    plain = load_data("fashion-mnist-small")
    wide = load_data("fashion-mnist-small", shape=(3, 32, 32))
    x, y = plain.train[0][:5], wide.train[0][:5]
    assert y.shape == (5, 3, 32, 32)
    assert torch.equal(y[:, 1, 2:30, 2:30], x[:, 0]) and torch.equal(y[:, 0], y[:, 2])
    assert float(y[:, :, :2].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="flatten"):
        load_data("fashion-mnist-small", shape=(1, 28, 28), flatten=True)
    with pytest.raises(ValueError, match="smaller"):
        load_data("fashion-mnist-small", shape=(1, 16, 16))


def _paper_chapters() -> list[str]:
    found = []
    for path in sorted(BOOK.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        if any('SCALE == "paper"' in "".join(c["source"]) for c in cells if c["cell_type"] == "code"):
            found.append(path.stem)
    return found


@pytest.mark.slow  # executes every Part II chapter
@pytest.mark.parametrize("chapter", _paper_chapters())
def test_chapter_runs_its_paper_branch_in_smoke_mode(chapter: str, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(BOOK / f"{chapter}.ipynb", as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged, f"{chapter} has no cell tagged 'parameters'"
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(SMOKE_CELL))
    # a fresh model cache: every run trains, as a reader's first run does, and the checkout's cache stays clean
    env = {configs.SMOKE_ENV: "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", CACHE_ENV: str(tmp_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}}
        )
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ------------------------------------------------------------------------------------------ bench/paper_scale.py
def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("paper_scale", BOOK.parent / "bench" / "paper_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_the_paper_benchmark_command_asks_for_the_papers_configuration() -> None:
    bench = _bench()
    paper = bench.setting(bench.parse(["--paper", "--device", "cuda"]))
    assert (paper.data, paper.n_train, paper.width, paper.n_hessian) == ("mnist", None, 64, 512)
    assert paper.recipe == configs.PAPER_RECIPE and paper.landweber_steps == 30
    default = bench.setting(bench.parse([]))
    assert (default.data, default.n_train, default.width, default.n_hessian) == (
        "fashion-mnist-small",
        2048,
        8,
        32,
    )
    assert (default.recipe.optimizer, default.recipe.momentum, default.recipe.weight_decay) == (
        "sgd",
        0.9,
        5e-4,
    )
    assert default.recipe.lr == pytest.approx(0.1 * default.recipe.batch_size / 512)


@pytest.mark.slow  # trains a model
def test_the_paper_benchmark_runs_its_paper_path_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    """``--paper --smoke``: the paper configuration's smoke variant, end to end, on the embedded data."""
    out = _bench().main(["--paper", "--smoke", "--device", "cpu", "--threads", "1"])
    assert out["setting"].recipe.lr == configs.PAPER_RECIPE.lr and out["setting"].width == 8
    assert {"GIF (LSQR)", "GIF (Landweber, 5 steps)", "retrained without the class"} <= set(out["scores"])
    assert "| GIF (LSQR) |" in capsys.readouterr().out


def test_removal_setup_in_batches_gives_the_same_problem() -> None:
    """At paper scale the removed class (~6,000 images) goes through the network in batches: same g, same
    second-order group objective."""
    torch.manual_seed(0)
    x, y = torch.randn(90, 5, dtype=torch.float64), torch.arange(90) % 3
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    one = ex.removal_setup(model, (x, y), (1,), n_hessian=40, weight_decay=1e-3)
    batched = ex.removal_setup(model, (x, y), (1,), n_hessian=40, weight_decay=1e-3, batch_size=7)
    assert torch.allclose(batched.g, one.g, rtol=1e-12, atol=1e-15)
    v = torch.randn(one.obj.num_params, dtype=torch.float64)
    assert torch.allclose(batched.second_order[1].hvp(v), one.second_order[1].hvp(v), rtol=1e-10, atol=1e-13)
    assert torch.equal(batched.group, one.group) and batched.second_order[2] == one.second_order[2]
    with pytest.raises(ValueError, match="batch_size"):
        ex.removal_setup(model, (x, y), (1,), batch_size=0)
