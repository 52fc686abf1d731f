"""The public surface: every public name of every module is in its ``__all__``, the core's all exported
from ``gif_lite``; no module imports another's private name; the one API shape of issue 10."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl

PACKAGE = Path(gl.__file__).parent
CORE = (
    "params",
    "objective",
    "curvature",
    "solvers",
    "influence",
    "attribution",
    "tasks",
    "selection",
    "spectrum",
    "train",
    "progress",
    "types",
)
BOOK_NEEDS_EXTRA = {"plots"}  # matplotlib: the book extra


def _modules() -> list[str]:
    names = [f"gif_lite.{m}" for m in CORE]
    for info in pkgutil.iter_modules([str(PACKAGE / "book")]):
        names.append(f"gif_lite.book.{info.name}")
    return names


def _public_top_level(path: Path) -> set[str]:
    """Names a module defines at top level (functions, classes, assignments) that do not start with ``_``."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("name", _modules())
def test_all_lists_every_public_name(name: str) -> None:
    path = PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py")
    if name.rsplit(".", 1)[1] in BOOK_NEEDS_EXTRA:
        pytest.importorskip("matplotlib")
    module = importlib.import_module(name)
    missing = _public_top_level(path) - set(module.__all__)
    assert not missing, f"{name}.__all__ lacks {sorted(missing)}"
    absent = [n for n in module.__all__ if not hasattr(module, n)]
    assert not absent, f"{name}.__all__ names {absent}, which it does not define"


def test_gif_lite_exports_the_contract_and_reaches_the_whole_core() -> None:
    """``gl.__all__`` is the contract, at most 45 names; every public name of a core module is reachable
    as ``gl.<name>`` as well (the chapters, bench and book helpers use many of them that way)."""
    assert len(gl.__all__) <= 45, len(gl.__all__)
    assert all(hasattr(gl, n) for n in gl.__all__)
    for name in CORE:
        module = importlib.import_module(f"gif_lite.{name}")
        missing = [n for n in module.__all__ if getattr(gl, n, None) is not getattr(module, n)]
        assert not missing, f"gif_lite lacks {sorted(missing)} of gif_lite.{name}"


def test_no_import_cycles_not_even_lazy_ones() -> None:
    """The core modules import each other in one order (a DAG), at module level only: no function-level
    ``from . import`` that would hide a cycle."""
    graph: dict[str, set[str]] = {}
    for name in (*CORE, "checks"):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        lazy = [
            n.lineno
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            for n in ast.walk(f)
            if isinstance(n, ast.ImportFrom) and n.level == 1
        ]
        assert not lazy, f"gif_lite.{name} imports a gif_lite module inside a function (line {lazy[0]})"
        graph[name] = deps
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"import cycle: {' -> '.join((*path, node))}"
        state[node] = 1
        for dep in graph.get(node, ()):
            visit(dep, (*path, node))
        state[node] = 2

    for node in graph:
        visit(node, ())


@pytest.mark.parametrize("name", _modules())
def test_no_private_name_imported_across_modules(name: str) -> None:
    path = PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{name} imports private {private} from {'.' * node.level}{node.module}"


def test_data_and_lossfn_are_exported() -> None:
    from gif_lite.types import Data, LossFn

    assert gl.Data is Data and gl.LossFn is LossFn


def test_problems_and_retraining_share_one_argument_order() -> None:
    problem = inspect.signature(gl.removal_problem).parameters
    retrain = inspect.signature(gl.retrain_without).parameters
    assert list(problem)[:4] == list(retrain)[:4] == ["model", "loss_fn", "data", "group"]
    problem = inspect.signature(gl.relabel_problem).parameters
    retrain = inspect.signature(gl.retrain_relabelled).parameters
    assert list(problem)[:5] == list(retrain)[:5] == ["model", "loss_fn", "data", "group", "new_labels"]


def test_every_estimator_takes_the_same_solver_options() -> None:
    options = ["solver", "damping", "tol", "max_iter", "solver_kwargs"]
    for fn in (
        gl.influence,
        gl.frozen_influence,
        gl.projected_influence,
        gl.generalized_influence,
        gl.second_order_influence,
        gl.second_order_relabel_influence,
    ):
        params = inspect.signature(fn).parameters
        assert [p for p in params if p in options] == options, fn.__name__


def test_select_parameters_is_a_deprecated_alias_of_select() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    with pytest.warns(DeprecationWarning, match=r"select\(\.\.\.\)\.subset"):
        old = gl.select_parameters(model, "highest_gradients", 0.3, x, y, F.cross_entropy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # select itself warns about nothing
        new = gl.select(model, "highest_gradients", 0.3, x, y, F.cross_entropy).subset
    assert torch.equal(old, new)


def test_every_book_helper_names_the_chapters_that_use_it() -> None:
    """d2l-style: each module of gif_lite/book/ says near its top which chapters (book/<name>.ipynb) use it."""
    import re

    chapters = {p.stem for p in (PACKAGE.parent / "book").glob("*.ipynb")}
    for path in sorted((PACKAGE / "book").glob("*.py")):
        if path.name == "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        match = re.search(r"^Used by: (.+?)\.$", doc, re.MULTILINE | re.DOTALL)
        assert match, f"{path.name}: the docstring needs a 'Used by: chapter, chapter.' line"
        listed = match.group(1).replace("\n", " ")
        if listed.startswith("every chapter"):
            continue
        names = [n.strip().split(" ")[0] for n in listed.split(",")]
        assert set(names) <= chapters, f"{path.name}: no chapter named {sorted(set(names) - chapters)}"
