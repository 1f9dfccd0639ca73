"""`flywheel labels import`: gold labels from CSV/JSONL/Parquet onto interactions, used by the next
curation as gold, and by the gate once every eval example has one."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import WorkloadConfig
from flywheel.curate import curate_workload
from flywheel.datasets import load_examples
from flywheel.evaluate.runner import ReplayPredictor, resolve_reference
from flywheel.evaluate.workflow import evaluate_workload
from flywheel.gold import GoldFileError, import_gold_labels
from flywheel.ingest import ingest_paths
from flywheel.pricing import PriceCatalog
from flywheel.registry import Registry
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl
from tests.evaluate.helpers import FnPredictor, insert_model

LABELS = ["business", "sports", "science"]
WORDS = [
    f"{a}{b}" for a in ("mar", "ven", "tol", "quis", "bran", "dor") for b in ("ak", "el", "im", "os", "un")
]
CURATION = {"expectations": False, "export": [], "max_client_share": None, "max_slice_share": None}
WORKLOAD = WorkloadConfig(id="news", task="classification", labels=LABELS, curation=CURATION)


def headline(i: int) -> str:
    return " ".join(random.Random(i).sample(WORDS, 7)).capitalize() + f" ({i})"


def logged(i: int, templated: bool = False) -> dict:
    """The teacher answered `business` for everything: gold says otherwise for a third of them."""
    record = chat_record(i, "business")
    prompt = f"Classify this headline.\n{headline(i)}\nAnswer with one word." if templated else headline(i)
    record["request"] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    return record


def truth(i: int) -> str:
    return LABELS[i % 3]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse(tmp_path / "warehouse.duckdb")
    records = [logged(i, templated=i % 5 == 0) for i in range(60)]
    ingest_paths(store, [write_jsonl(tmp_path / "logs.jsonl", records)], workload_id="news")
    return store


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "headline,label") -> Path:
    lines = [header] + ['"{}",{}'.format(key.replace('"', '""'), label) for key, label in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_on_prompt_text_then_curate_uses_the_gold(warehouse: Warehouse, tmp_path: Path) -> None:
    rows = [(headline(i), truth(i)) for i in range(60)]
    rows += [("A headline nobody logged", "sports"), (headline(3), "weather")]
    path = write_csv(tmp_path / "gold.csv", rows)
    report = import_gold_labels(warehouse, WORKLOAD, path, match="prompt")
    assert (report.rows, report.matched, len(report.unmatched), len(report.invalid)) == (62, 60, 1, 1)
    assert report.unmatched[0] == {"ref": f"{path}:62", "key": "A headline nobody logged"}
    assert report.invalid[0] == {
        "ref": f"{path}:63",
        "reason": "label 'weather' is not one of the workload's labels",
    }
    assert report.labeled == report.changed == 60, "templated prompts match on their own line"
    assert report.eval_total is None  # never curated yet

    curate_workload(warehouse, WORKLOAD, home=tmp_path)
    examples = load_examples(warehouse, "news")
    number = {headline(i): i for i in range(60)}
    lines = [
        (e, [number[x] for x in e.messages[-1]["content"].splitlines() if x in number]) for e in examples
    ]
    assert lines and all(found == [found[0]] and e.gold == truth(found[0]) for e, found in lines)
    assert {e.gold for e in examples} == set(LABELS) and {e.label for e in examples} == {"business"}
    eval_split = [e for e in examples if e.split == "eval"]
    assert eval_split and resolve_reference(eval_split, "auto") == "gold"
    # The gate judges against gold now: the replayed teacher (always "business") is the weak one.
    registry = Registry(warehouse, tmp_path)
    insert_model(warehouse, tmp_path, "news/good/1", workload_id="news")
    report = evaluate_workload(
        registry,
        WORKLOAD,
        eval_split,
        candidates={"news/good/1": FnPredictor("good", lambda e: e.gold)},
        teacher=ReplayPredictor(model="gpt-4o-mini"),
        prices=PriceCatalog.load(),
        n_resamples=200,
    )
    assert report.result.reference == "gold" and report.decision.target.criterion == "non_inferior_to_teacher"
    assert report.result.models["teacher"].primary.value < 0.6 and report.decision.decision == "promote"


def test_partial_gold_keeps_the_teacher_reference_and_says_how_much(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    curate_workload(warehouse, WORKLOAD, home=tmp_path)
    eval_split = load_examples(warehouse, "news", splits=("eval",))
    eval_ids = [e.interaction_id for e in eval_split]
    path = tmp_path / "gold.jsonl"
    labelled = eval_ids[:-1]  # all but one eval example
    write_jsonl(path, [{"id": i, "label": "sports"} for i in labelled])
    report = import_gold_labels(warehouse, WORKLOAD, path, match="id")
    assert (report.eval_with_gold, report.eval_total) == (len(eval_ids) - 1, len(eval_ids))
    curate_workload(warehouse, WORKLOAD, home=tmp_path)
    partial = load_examples(warehouse, "news", splits=("eval",))
    assert [e.interaction_id for e in partial] == eval_ids, "gold changes no eval membership"
    assert resolve_reference(partial, "auto") == "teacher"
    with pytest.raises(ValueError, match=r"1 of \d+ eval examples have no gold"):
        resolve_reference(partial, "gold")
    write_jsonl(path, [{"id": eval_ids[-1].upper(), "label": "Science"}])  # ids and labels normalised
    assert import_gold_labels(warehouse, WORKLOAD, path, match="id").eval_with_gold == len(eval_ids)
    curate_workload(warehouse, WORKLOAD, home=tmp_path)
    full = load_examples(warehouse, "news", splits=("eval",))
    assert resolve_reference(full, "auto") == "gold" and full[-1].gold in ("science", "sports")


def test_conflicts_reimport_and_dry_run(warehouse: Warehouse, tmp_path: Path) -> None:
    ids = [
        row[0]
        for row in warehouse.read(
            lambda con: con.execute("SELECT id FROM interactions ORDER BY id").fetchall()
        )
    ]
    pairs = [(ids[0], "sports"), (ids[0], "science"), (ids[1], "sports"), (ids[1], "sports")]
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": i, "label": label} for i, label in pairs])
    report = import_gold_labels(warehouse, WORKLOAD, path, match="id")
    assert report.labeled == 1 and report.conflicts[0]["labels"] == ["science", "sports"]
    assert report.conflicts[0]["refs"] == [f"{path}:1", f"{path}:2"]
    write_jsonl(path, [{"id": ids[1], "label": "science"}, {"id": ids[2], "label": "sports"}])
    dry = import_gold_labels(warehouse, WORKLOAD, path, match="id", dry_run=True)
    assert dry.labeled == 2 and dry.dry_run
    again = import_gold_labels(warehouse, WORKLOAD, path, match="id")
    assert (again.labeled, again.changed) == (2, 2)
    stored = dict(
        warehouse.read(lambda con: con.execute("SELECT interaction_id, label FROM gold_labels").fetchall())
    )
    assert stored == {ids[1]: "science", ids[2]: "sports"}, "a re-import replaces; the dry run stored nothing"


def test_parquet_matched_on_an_ingested_source_column(tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text("ticket_ref,text,answer\n" + "".join(f"T{i},{headline(i)},business\n" for i in range(20)))
    store = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(
        store, [logs], workload_id="news", fmt="csv", mapping={"prompt": "text", "response": "answer"}
    )
    table = pa.table(
        {"ticket_ref": [f"T{i}" for i in range(0, 20, 2)], "label": [truth(i) for i in range(0, 20, 2)]}
    )
    pq.write_table(table, tmp_path / "gold.parquet")
    report = import_gold_labels(
        store, WORKLOAD, tmp_path / "gold.parquet", match="column", column="ticket_ref"
    )
    assert (report.matched, report.labeled) == (10, 10)
    with pytest.raises(GoldFileError, match=r"gold.parquet: no column 'ref' \(columns: ticket_ref, label\)"):
        import_gold_labels(store, WORKLOAD, tmp_path / "gold.parquet", match="column", column="ref")


def test_file_errors_name_the_file_and_line(warehouse: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(GoldFileError, match=r"x.csv: no label column 'label' \(columns: headline, truth\)"):
        import_gold_labels(warehouse, WORKLOAD, write_csv(tmp_path / "x.csv", [], "headline,truth"))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "label": "sports"}\n{oops\n')
    with pytest.raises(GoldFileError, match=r"bad.jsonl:2: not a JSON object"):
        import_gold_labels(warehouse, WORKLOAD, bad, match="id")
    with pytest.raises(GoldFileError, match=r"x.xlsx: unknown label file format"):
        (tmp_path / "x.xlsx").write_text("")
        import_gold_labels(warehouse, WORKLOAD, tmp_path / "x.xlsx")
    two = write_csv(tmp_path / "two.csv", [], "headline,source,label")
    with pytest.raises(
        GoldFileError,
        match=r"no key column 'prompt' or 'text' or 'input' \(columns: .*\); pass --column NAME",
    ):
        import_gold_labels(warehouse, WORKLOAD, two)


def test_cli_labels_import(warehouse: Warehouse, tmp_path: Path) -> None:
    config = tmp_path / "flywheel.yaml"
    config.write_text(yaml.safe_dump({"workloads": [WORKLOAD.model_dump(mode="json", exclude_none=True)]}))
    base = ["--config", str(config), "--home", str(tmp_path)]
    gold = write_csv(
        tmp_path / "gold.csv", [(headline(i), truth(i)) for i in range(10)] + [("nope", "sports")]
    )
    runner = CliRunner()
    result = runner.invoke(
        app, [*base, "labels", "import", str(gold), "-w", "news", "--match", "prompt", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["rows"], payload["matched"], payload["unmatched"], payload["labeled"]) == (11, 10, 1, 10)
    shown = runner.invoke(app, [*base, "labels", "import", str(gold), "-w", "news"])
    assert shown.exit_code == 0 and "matched" in shown.stdout and f"{gold}:12" in shown.stderr
    miss = write_csv(tmp_path / "miss.csv", [("nothing like it", "sports")])
    result = runner.invoke(app, [*base, "labels", "import", str(miss), "-w", "news", "--json"])
    assert result.exit_code == 1 and "none of the 1 rows" in json.loads(result.stdout)["error"]
    result = runner.invoke(app, [*base, "labels", "import", str(gold), "-w", "news", "--match", "column"])
    assert result.exit_code == 2 and "--column NAME" in result.output
    result = runner.invoke(
        app, [*base, "labels", "import", str(tmp_path / "none.csv"), "-w", "news", "--json"]
    )
    assert result.exit_code == 1 and "none.csv: no such file" in json.loads(result.stdout)["error"]
