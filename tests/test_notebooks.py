"""Static checks of the committed chapters: clean metadata, the guarded set-up cell, checked outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # reads every chapter

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _config_repository_url() -> str:
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, re.MULTILINE)
    assert match, "_config.yml must set repository.url"
    return match.group(1)


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_there_are_chapters() -> None:
    assert len(CHAPTERS) >= 2


def test_every_chapter_is_in_the_table_of_contents() -> None:
    toc = (ROOT / "_toc.yml").read_text()
    for path in CHAPTERS:
        assert f"book/{path.stem}" in toc, f"{path.name} is not listed in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_from_one_clean_run(path: Path) -> None:
    nb = json.loads(path.read_text())
    counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), "execution counts must be 1..n: run on a fresh kernel"
    for cell in nb["cells"]:
        assert "execution" not in cell["metadata"], "strip the per-cell execution timestamps"
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", "a stored error output"
    widgets = nb.get("metadata", {}).get("widgets", {})
    for key, value in widgets.items():
        assert "state" in value, f"widget metadata {key} has no 'state' (renders badly on GitHub)"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_guarded_setup_and_parameters_cells(path: Path) -> None:
    setup, params = _code_cells(path)[:2]
    source = "".join(setup["source"])
    assert "hide-output" in setup["metadata"].get("tags", [])
    assert 'find_spec("gif_lite") is None' in source, (
        "the set-up cell must only install when gif_lite is missing"
    )
    assert _config_repository_url() in source, (
        "the set-up cell must clone the repository named in _config.yml"
    )
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert "torch" not in code, "the set-up cell must never (re)install torch"
    assert "parameters" in params["metadata"].get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_key_results_are_checked_by_nbval(path: Path) -> None:
    checked = [c for c in _code_cells(path) if "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked, "print the chapter's key results in a cell marked # NBVAL_CHECK_OUTPUT"
    assert all(c.get("outputs") for c in checked)
