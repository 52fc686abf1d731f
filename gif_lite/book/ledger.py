"""The protocol ledger: every setting of the GIF paper's experiments, cited line by line in its code.

Used by: class_removal, selection_study, backdoor, inside.

It is the source of the appendix page ``book/paper_protocol.md`` (rendered from the ledger) and of
:mod:`configs` (every paper-scale setting is read from it); the chapters cite it.

The data live in ``paper_protocol.json`` beside this module.  Each experiment has rows; each row names a
setting, says what the paper's code does (``paper``), cites it (``cite``: ``path:L`` or ``path:L1-L2``
for source files, ``path#cN:L`` for line L of notebook cell N, ``path#cN:out`` for a cell's stored
output, each with a ``quote`` that the cited text contains), and puts the book's own setting and the
reason for any difference beside it.  Rows that a configuration reads carry ``key`` and ``value``.

Run ``python -m gif_lite.book.ledger --write`` to regenerate the page, and
``python -m gif_lite.book.ledger --verify DIR`` to check every quote against a checkout of the paper's
code (``git clone https://github.com/hslyu/GIF && git -C GIF checkout <commit>``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "LEDGER_PATH",
    "PAGE_PATH",
    "Cite",
    "cites",
    "experiment",
    "ledger",
    "main",
    "page_markdown",
    "parse_cite",
    "value",
    "verify",
]

LEDGER_PATH = Path(__file__).with_name("paper_protocol.json")
PAGE_PATH = Path("book") / "paper_protocol.md"
_CITE = re.compile(r"^(?P<path>[^#:]+)(?:#c(?P<cell>\d+))?:(?P<lines>out|\d+(?:-\d+)?)$")


@dataclass(frozen=True)
class Cite:
    """One citation: a file, a notebook cell (or None), and lines (or None for a cell's output)."""

    path: str
    cell: int | None
    first: int | None
    last: int | None
    quote: str

    @property
    def label(self) -> str:
        where = (
            "output"
            if self.first is None
            else f"line {self.first}"
            if self.first == self.last
            else (f"lines {self.first}-{self.last}")
        )
        if self.cell is not None:
            return f"{self.path}, cell {self.cell}, {where}"
        return f"{self.path}:{self.first}" + ("" if self.first == self.last else f"-{self.last}")


def parse_cite(entry: dict[str, str]) -> Cite:
    """Parse ``{"at": "path#cN:L1-L2", "quote": ...}``; raises ValueError on a malformed ``at``."""
    match = _CITE.match(entry["at"])
    if not match:
        raise ValueError(
            f"malformed citation {entry['at']!r}: use path:L, path:L1-L2, path#cN:L or path#cN:out"
        )
    cell = int(match["cell"]) if match["cell"] else None
    if match["lines"] == "out":
        if cell is None:
            raise ValueError(f"{entry['at']!r}: only a notebook cell has a stored output")
        return Cite(match["path"], cell, None, None, entry["quote"])
    first, _, last = match["lines"].partition("-")
    lo, hi = int(first), int(last or first)
    if hi < lo:
        raise ValueError(f"{entry['at']!r}: the line range runs backwards")
    return Cite(match["path"], cell, lo, hi, entry["quote"])


@cache
def ledger() -> dict[str, Any]:
    """The ledger as stored (read once)."""
    return json.loads(LEDGER_PATH.read_text(encoding="utf-8"))


def experiment(name: str) -> dict[str, Any]:
    """One experiment's table by id (e.g. ``"table2-mnist"``)."""
    for exp in ledger()["experiments"]:
        if exp["id"] == name:
            return exp
    valid = ", ".join(e["id"] for e in ledger()["experiments"])
    raise KeyError(f"no experiment {name!r} in the ledger; valid: {valid}")


def value(name: str, key: str) -> Any:
    """The machine-readable value of the row ``key`` of experiment ``name`` (what configs read)."""
    for row in experiment(name)["rows"]:
        if row.get("key") == key:
            return row["value"]
    raise KeyError(f"experiment {name!r} has no row with key {key!r}")


def cites() -> list[Cite]:
    """Every citation in the ledger, in order."""
    return [parse_cite(c) for e in ledger()["experiments"] for r in e["rows"] for c in r["cite"]]


def _norm(text: str) -> str:
    return " ".join(text.split())


def _cited_text(root: Path, cite: Cite) -> str:
    path = root / cite.path
    if cite.cell is None:
        lines = path.read_text(encoding="utf-8").splitlines()
        return "\n".join(lines[cite.first - 1 : cite.last])  # type: ignore[operator]
    cell = json.loads(path.read_text(encoding="utf-8"))["cells"][cite.cell]
    if cite.first is None:
        parts = []
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
        return "\n".join(parts)
    lines = "".join(cell["source"]).splitlines()
    return "\n".join(lines[cite.first - 1 : cite.last])


def verify(root: str | Path) -> list[str]:
    """Check every quote against a checkout of the paper's code at ``root``; return the failures."""
    root = Path(root)
    failures = []
    for cite in cites():
        try:
            text = _cited_text(root, cite)
        except (OSError, IndexError, KeyError, json.JSONDecodeError) as err:
            failures.append(f"{cite.label}: cannot read ({err})")
            continue
        if _norm(cite.quote) not in _norm(text):
            failures.append(f"{cite.label}: {cite.quote!r} not found in {text[:200]!r}")
    return failures


def _link(cite: Cite, repo: str, commit: str) -> str:
    url = f"{repo}/blob/{commit}/{cite.path}"
    if cite.cell is None:
        url += f"#L{cite.first}" + ("" if cite.first == cite.last else f"-L{cite.last}")
    return f"[{cite.label}]({url})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def page_markdown() -> str:
    """The appendix page, rendered from the ledger."""
    data = ledger()
    repo, commit = data["repository"], data["commit"]
    total = len(cites())
    out = [
        f"# {data['title']}",
        "",
        "Every setting of every experiment in the GIF paper {cite:p}`lyu2023deeper`, as its official code "
        f"sets it, at commit [`{commit[:7]}`]({repo}/tree/{commit}), cited line by line "
        f"({total} citations), with the book's own setting beside it and the reason for any difference.",
        "",
        "This page is generated from `gif_lite/book/paper_protocol.json` by "
        "`python -m gif_lite.book.ledger --write`; a test holds the two together, another checks that "
        "every paper-scale configuration (`gif_lite.book.configs.paper_config`) takes its values from the "
        "ledger, and `python -m gif_lite.book.ledger --verify <checkout>` checks that each cited line "
        "contains the quoted code. Notebook citations give the cell (counted from 0) and the line within "
        "it. Where the chapters describe the paper, they follow this page.",
        "",
    ]
    for exp in data["experiments"]:
        out += [f"## {exp['title']}", ""]
        meta = [f"Chapters: {', '.join('{doc}`' + c + '`' for c in exp['chapters'])}."]
        if exp.get("config"):
            meta.append(f"Paper-scale configuration: `paper_config({exp['config']!r})`.")
        out += [" ".join(meta), ""]
        out += [
            "| | setting | the paper's code | cited | the book | why |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in exp["rows"]:
            links = "<br>".join(_link(parse_cite(c), repo, commit) for c in row["cite"]) or "the paper's PDF"
            out.append(
                f"| {_cell(row['group'])} | {_cell(row['setting'])} | {_cell(row['paper'])} | {links} | "
                f"{_cell(row['book'])} | {_cell(row['why'])} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render or verify the protocol ledger.")
    parser.add_argument(
        "--write", action="store_true", help=f"write {PAGE_PATH} (run from the repository root)"
    )
    parser.add_argument(
        "--verify", metavar="DIR", help="check every quote against a checkout of the paper's code"
    )
    args = parser.parse_args(argv)
    if args.verify:
        failures = verify(args.verify)
        print("\n".join(failures) or f"all {len(cites())} citations found")
        return 1 if failures else 0
    if args.write:
        PAGE_PATH.write_text(page_markdown() + "\n", encoding="utf-8")
        print(f"wrote {PAGE_PATH}")
    else:
        print(page_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
