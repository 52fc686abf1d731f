"""`make book` fails loudly: a chapter that raises stops the build, and the error names the chapter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_raising_chapter_fails_the_build_and_is_named(tmp_path: Path) -> None:
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed (the `book` extra)")
    config = (ROOT / "_config.yml").read_text()
    assert "nb_execution_raise_on_error: true" in config
    (tmp_path / "_config.yml").write_text(config.replace("bibtex_bibfiles:\n  - book/references.bib\n", ""))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Broken"),
        nbformat.v4.new_code_cell("assert 1 == 2, 'a claim that no longer holds'"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "broken.ipynb")
    run = subprocess.run(
        [str(jb), "build", str(tmp_path), "--all"], capture_output=True, text=True, timeout=600
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, "a raising chapter must fail the build"
    assert "broken.ipynb" in output and "a claim that no longer holds" in output
    html = tmp_path / "_build" / "html" / "broken.html"
    assert not html.exists() or "AssertionError" not in html.read_text()
