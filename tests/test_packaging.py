"""environment.yml and pyproject.toml list the same dependencies; the package exposes the contract."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import gif_lite

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("book", "test"):
        wanted |= set(project["optional-dependencies"][extra])
    env = (ROOT / "environment.yml").read_text()
    listed = set(re.findall(r'^\s+- "([^"]+)"$', env, re.MULTILINE)) - {"-e ."}
    assert listed == wanted


def test_torch_is_bounded_not_pinned() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_spec = next(d for d in deps if d.startswith("torch>") or d.startswith("torch="))
    assert "==" not in torch_spec and "<" in torch_spec


def test_contract_names_are_exported() -> None:
    for name in (
        "Objective",
        "influence",
        "frozen_influence",
        "projected_influence",
        "generalized_influence",
        "second_order_influence",
        "InfluenceResult",
        "select",
        "retrain_without",
        "retrain_relabelled",
        "Data",
        "LossFn",
        "removal_problem",
        "relabel_problem",
    ):
        assert name in gif_lite.__all__ and hasattr(gif_lite, name)
