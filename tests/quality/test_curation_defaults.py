"""Curation defaults that respect real traffic: templated near-dups, production shares, merged labels."""

from __future__ import annotations

from pathlib import Path

from flywheel.config import WorkloadConfig
from flywheel.quality.dedup import duplicate_groups, jaccard, shingles
from flywheel.quality.pool import cap_pool, mark_duplicates, production_counts, production_report
from flywheel.quality.rows import CurationRow

TEMPLATE = (
    "Here is a financial news headline. Decide which analyst rating action it reports and answer with the "
    "action wrapped in four square brackets, like [[[[action]]]]. Possible actions: upgrade, downgrade, "
    "initiation, reiteration, price target change.\nHeadline: {}\nAnswer:"
)
HEADLINES = [
    "Citigroup Downgrades Hanesbrands to Neutral",
    "RBC Capital Downgrades MGIC Investment to Sector Perform",
    "Goldman Sachs Upgrades Tesla to Buy",
    "Morgan Stanley Initiates Coverage On Snowflake with Overweight",
    "JPMorgan Reiterates Overweight on Microsoft",
    "Wells Fargo Downgrades Intel to Equal Weight",
    "BofA Upgrades Nike to Buy",
    "Jefferies Initiates Coverage On Rivian with Hold",
    "UBS Lowers Price Target on Boeing",
    "Piper Sandler Upgrades Etsy to Overweight",
    "Mizuho Downgrades PayPal to Neutral",
    "Deutsche Bank Reiterates Buy on Amazon",
    "Evercore ISI Upgrades Netflix to Outperform",
    "Bernstein Downgrades Starbucks to Market Perform",
    "KeyBanc Initiates Coverage On Datadog with Overweight",
    "Truist Raises Price Target on Nvidia",
    "Citi Upgrades Ford to Buy",
    "Raymond James Downgrades Zoom to Market Perform",
    "Stifel Reiterates Buy on Salesforce",
    "Oppenheimer Upgrades Shopify to Outperform",
    "Baird Downgrades Target to Neutral",
    "Needham Initiates Coverage On Roblox with Buy",
    "Citigroup Downgrades Hanesbrands to Neutral",  # the same request again (another day)
]


def test_templated_items_are_compared_on_their_varying_part() -> None:
    texts = [TEMPLATE.format(h) for h in HEADLINES]
    assert jaccard(shingles(texts[0]), shingles(texts[1])) > 0.7  # the template dominates the text
    assert len(duplicate_groups(texts).groups[0]) > 20  # without the fix: one big "family"
    groups = duplicate_groups(texts, common_share=0.9)
    assert groups.groups == [[0, 22]]  # only the real duplicate
    assert {"headline", "brackets", "analyst"} <= groups.common


def test_calibration_lists_pairs_near_the_threshold() -> None:
    texts = [
        "where is my parcel, it has not arrived since monday",
        "where is my parcel, it has not arrived since tuesday",
        "how do i change the delivery address of my order",
        "how can i change the delivery adress for my order",
    ]
    groups = duplicate_groups(texts, threshold=0.7)
    assert groups.calibration, "pairs near 0.7 are reported"
    for pair in groups.calibration:
        assert abs(pair.score - 0.7) <= 0.1 and pair.merged == (pair.score >= 0.7)


def workload(**curation: object) -> WorkloadConfig:
    return WorkloadConfig.model_validate(
        {"id": "w", "task": "tool_call", "curation": {"expectations": False, **curation}}
    )


def row(index: int, text: str, label: str, **fields: object) -> CurationRow:
    out = CurationRow(
        interaction_id=f"id{index:04d}", client_id=f"c{index % 3}", source_ref=f"f.jsonl:{index + 1}",
        batch_id="b", status="ok", ts=None, request={}, response={}, feedback=None, metadata={},
        prompt_tokens=None, completion_tokens=None,
    )  # fmt: skip
    out.input_text, out.label = text, label
    for key, value in fields.items():
        setattr(out, key, value)
    return out


def test_duplicates_pass_gold_and_negative_feedback_to_the_kept_row() -> None:
    rows = [
        row(0, "cancel order 5521 please", "cancel"),
        row(1, "Cancel order 5521, please!", "cancel", gold="cancel_order"),  # other client, has gold
        row(2, "what is the status of order 77", "status"),
        row(3, "What is the status of order 77?", "status", reason="negative_feedback"),  # rated down
        row(4, "track order 90", "status", weight=1.0),
    ]
    counts, _ = mark_duplicates(rows, workload())
    assert rows[1].reason == "exact_duplicate" and rows[0].kept and rows[0].gold == "cancel_order"
    assert rows[2].reason == "negative_feedback" and "f.jsonl:4" in rows[2].detail
    assert counts["gold_merged"] == 1 and counts["feedback_merged"] == 1
    down = [row(0, "a b c d e", "x"), row(1, "A b c d e", "x", weight=0.25)]
    mark_duplicates(down, workload(feedback={"field": "feedback", "action": "downweight"}))
    assert down[0].kept and down[0].weight == 0.25


def test_slice_cap_keeps_a_slice_at_its_production_share_unless_told() -> None:
    pool = [row(i, f"text {i}", "none" if i < 53 else f"tool{i % 4}") for i in range(100)]
    for item in pool:
        item.slice = item.label
    production = production_counts(pool, workload())
    assert production == {}  # no parsed answers: tool slices come from parsed tool calls
    production = {"none": 53, "tool1": 12, "tool2": 12, "tool3": 12, "tool0": 11}
    _, after = cap_pool(pool, workload(max_client_share=None), production)
    assert after["slice"].counts["none"] == 53 and all(r.kept for r in pool)
    allowed = [row(i, f"text {i}", r.label) for i, r in enumerate(pool)]
    for item in allowed:
        item.slice = item.label
    _, cut = cap_pool(allowed, workload(max_client_share=None, cap_below_production_share=True), production)
    assert cut["slice"].counts["none"] < 53
    said = production_report(production, cut["slice"], capped_below=True)
    assert said["below_production_share"]["none"]["production_share"] == 0.53
    assert "'none'" in said["warnings"][0] and "53.0% of the traffic" in said["warnings"][0]


def test_curate_without_labels_proposes_them_and_keeps_the_gold_of_a_duplicate(tmp_path: Path) -> None:
    from flywheel.curate import curate_workload
    from flywheel.ingest import ingest_paths
    from flywheel.store.db import Warehouse
    from tests.conftest import chat_record, write_jsonl

    records = []
    for i, headline in enumerate(HEADLINES):
        record = chat_record(
            i, "[[[[downgrade]]]]" if "Downgrades" in headline else "[[[[other]]]]", client_id=f"c{i}"
        )
        record["request"] = {
            "model": "m",
            "messages": [{"role": "user", "content": TEMPLATE.format(headline)}],
        }
        records.append(record)
    # the repeat, typed in capitals by another client, carries the gold label: a curation duplicate
    records[-1]["request"]["messages"][0]["content"] = TEMPLATE.format(HEADLINES[-1].upper())
    records[-1]["metadata"] = {"label": "downgrade"}
    # the very same call logged again the next day with a thumbs down: an ingest duplicate
    records.append(
        {**records[1], "client_id": "late", "timestamp": 1_800_000_000, "feedback": {"thumbs": "down"}}
    )
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [write_jsonl(tmp_path / "logs.jsonl", records)], workload_id="w")
    curation = {"expectations": False, "export": [], "max_client_share": None, "eval_fraction": 0.0}
    workload = WorkloadConfig.model_validate({"id": "w", "task": "classification", "curation": curation})
    report = curate_workload(warehouse, workload, home=tmp_path)
    proposal = report.label_proposal
    assert proposal["labels"] == {"other": 15, "downgrade": 8}  # an ingest duplicate is one call
    assert proposal["wrapping"] == "brackets" and proposal["label_parser"]["regex"]
    assert report.rejected == {"exact_duplicate": 1, "negative_feedback": 1}  # the thumbs down survived
    assert report.dedup["gold_merged"] == 1
    gold = warehouse.read(
        lambda con: con.execute("SELECT gold FROM snapshot_examples WHERE gold IS NOT NULL").fetchall()
    )
    assert gold == [("downgrade",)]


def test_flywheel_quality_shows_the_calibration(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from flywheel.cli import app
    from flywheel.curate import curate_workload
    from flywheel.ingest import ingest_paths
    from flywheel.store.db import Warehouse
    from tests.conftest import chat_record, write_jsonl

    texts = [
        "where is my parcel, it has not arrived since monday",
        "where is my parcel, it has not arrived since tuesday",
        "how do i change the delivery address of my order",
        "how can i change the delivery adress for my order",
    ]
    records = [chat_record(i, "billing") for i in range(len(texts))]
    for record, text in zip(records, texts, strict=True):
        record["request"]["messages"][0]["content"] = text
    warehouse = Warehouse(tmp_path / "home" / "warehouse.duckdb")
    ingest_paths(warehouse, [write_jsonl(tmp_path / "l.jsonl", records)], workload_id="w")
    curation = {"expectations": False, "export": [], "eval_fraction": 0.0}
    workload = WorkloadConfig.model_validate({"id": "w", "task": "classification", "curation": curation})
    curate_workload(warehouse, workload, home=tmp_path / "home")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "quality", "-w", "w", "--json"])
    payload = json.loads(result.stdout)
    pairs = {(p["merged"], p["a"]["input"][:12]) for p in payload["dedup_calibration"]}
    assert pairs == {(True, "where is my "), (False, "how do i cha")}
    assert payload["dedup"]["near_duplicate"] == 1
