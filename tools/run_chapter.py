"""Execute chapters in place on a fresh kernel and commit-ready: outputs kept, metadata clean.

Run from the repository root: ``python tools/run_chapter.py book/gif.ipynb [...]``.  Each chapter runs top
to bottom in its own folder (as nbval and the book build run it); per-cell execution timestamps and
kernel-specific metadata are dropped, so the committed file changes only where the chapter did.  Prints
each chapter's wall time (not stored anywhere).  Exits non-zero, naming the chapter, if a cell raises;
the file is then left as it was.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def clean(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("kernelspec", None)  # the committed chapters name no kernel


def run(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    clean(nb)
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    for path in args.chapters:
        try:
            seconds = run(path, args.timeout)
        except CellExecutionError as err:
            print(f"{path}: a cell raised; the file is unchanged\n{err}", file=sys.stderr)
            return 1
        print(f"{path}: executed in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
