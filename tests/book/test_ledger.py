"""The protocol ledger: one source for the appendix page and every paper-scale configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gif_lite.book import configs, ledger

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = {
    "training", "data", "figure2", "figure3", "table1-cifar10", "table1-svhn",
    "table2-mnist", "table2-cifar10", "table2-svhn", "table3", "figures4-5",
}  # fmt: skip


def test_the_page_is_the_rendering_of_the_ledger() -> None:
    page = (ROOT / ledger.PAGE_PATH).read_text(encoding="utf-8")
    assert page == ledger.page_markdown() + "\n", "run `python -m gif_lite.book.ledger --write`"


def test_every_experiment_is_there_and_cited_line_by_line() -> None:
    data = ledger.ledger()
    assert {e["id"] for e in data["experiments"]} == EXPERIMENTS
    assert len(data["commit"]) == 40
    cites = ledger.cites()
    assert len(cites) >= 40
    assert all(c.quote.strip() for c in cites)
    for exp in data["experiments"]:
        for row in exp["rows"]:
            assert row["paper"] and row["book"], (exp["id"], row["setting"])


def test_citation_syntax() -> None:
    cite = ledger.parse_cite({"at": "scripts/x.ipynb#c4:13-15", "quote": "q"})
    assert (cite.path, cite.cell, cite.first, cite.last) == ("scripts/x.ipynb", 4, 13, 15)
    assert cite.label == "scripts/x.ipynb, cell 4, lines 13-15"
    assert ledger.parse_cite({"at": "a.py:7", "quote": "q"}).label == "a.py:7"
    assert ledger.parse_cite({"at": "n.ipynb#c2:out", "quote": "q"}).first is None
    for bad in ("a.py", "a.py:9-3", "a.py:out", "a.py:L3"):
        with pytest.raises(ValueError):
            ledger.parse_cite({"at": bad, "quote": "q"})


def test_verify_finds_a_quote_and_reports_a_missing_one(tmp_path: Path) -> None:
    first = ledger.cites()[0]
    assert first.cell is None and first.first is not None
    target = tmp_path / first.path
    target.parent.mkdir(parents=True)
    lines = ["x"] * (first.first - 1) + [first.quote] * (first.last - first.first + 1)
    target.write_text("\n".join(lines))
    failures = ledger.verify(tmp_path)
    assert not any(f.startswith(first.label + ":") for f in failures)
    assert len(failures) >= len(ledger.cites()) - 5  # everything else is absent from the fake checkout
    target.write_text("\n".join(["x"] * first.last))
    assert any(f.startswith(first.label + ":") and "not found" in f for f in ledger.verify(tmp_path))


@pytest.mark.skipif(
    not os.environ.get("GIF_PAPER_CODE"), reason="set GIF_PAPER_CODE to a checkout of hslyu/GIF"
)
def test_every_quote_is_in_the_papers_code() -> None:
    assert ledger.verify(os.environ["GIF_PAPER_CODE"]) == []


@pytest.mark.parametrize("name", sorted(configs.PAPER_CONFIGS))
def test_every_paper_config_equals_the_ledger(name: str) -> None:
    cfg = configs.paper_config(name, smoke=False)
    exp = cfg.protocol
    model = ledger.value(exp, "model")
    assert cfg.model == model["name"]
    assert cfg.model_kwargs == {k: v for k, v in model.items() if k != "name"}
    assert cfg.ratios == tuple(ledger.value(exp, "ratios"))
    assert cfg.hessian_batch == ledger.value(exp, "hessian_batch")
    assert cfg.draws == ledger.value(exp, "draws")
    assert cfg.landweber == ledger.value(exp, "landweber")
    assert cfg.increment == ledger.value(exp, "walk")["increment"]
    assert cfg.limits, "a paper-scale config says what a reader cannot run as the paper did"
    paper = cfg.paper_recipe
    if exp == "table3":
        recipe = ledger.value("table3", "recipe")
        assert (paper.epochs, paper.schedule, paper.batch_size) == (
            recipe["epochs"], recipe["schedule"], recipe["batch_size"],
        )  # fmt: skip
        assert (cfg.target, cfg.fraction) == (ledger.value(exp, "target"), ledger.value(exp, "fraction"))
    else:
        opt = ledger.value("training", "optimizer")
        assert (paper.optimizer, paper.momentum, paper.weight_decay) == (
            opt["name"], opt["momentum"], opt["weight_decay"],
        )  # fmt: skip
        assert (paper.lr, paper.batch_size, paper.epochs) == (
            ledger.value("training", "lr"), ledger.value("training", "batch_size"),
            ledger.value("training", "epochs"),
        )  # fmt: skip
        assert paper.schedule == ledger.value("training", "schedule")[cfg.model]


def test_lookup_errors_name_the_valid_choices() -> None:
    with pytest.raises(KeyError, match="valid: training"):
        ledger.experiment("table9")
    with pytest.raises(KeyError, match="no row with key"):
        ledger.value("table3", "colour")


def test_the_json_is_plain_data() -> None:
    raw = (ROOT / "gif_lite" / "book" / "paper_protocol.json").read_text(encoding="utf-8")
    assert json.loads(raw) == ledger.ledger()
