"""Execution time of every chapter on a fresh kernel (target: each <= 120 s, the book <= 10 minutes).

Run: ``python bench/book_timings.py`` (executes copies; the committed notebooks are not modified).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def time_chapter(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebooks (default: every book/*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    paths = [Path(p) for p in args.chapters] or sorted((ROOT / "book").glob("*.ipynb"))
    total = 0.0
    print(f"{'chapter':<24} {'seconds':>8}  within 120 s")
    for path in paths:
        seconds = time_chapter(path, args.timeout)
        total += seconds
        print(f"{path.stem:<24} {seconds:8.1f}  {'yes' if seconds <= 120 else 'NO'}")
    print(f"{'total':<24} {total:8.1f}  {'within 10 minutes' if total <= 600 else 'OVER 10 minutes'}")


if __name__ == "__main__":
    main()
