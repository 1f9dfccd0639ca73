"""Data need on real traffic: a 14-intent slice of BANKING77 run as replay classification logs.

Writes derived traffic (a seeded sample of `--records` rows of the first `--labels` intents of
train.csv; the dataset itself is read in place) and a flywheel.yaml whose MiniLM student leaves
epochs, learning rate and max length to the data (flywheel.train.search), then runs one turn
(`flywheel run`) and prints the gate's decision, its reasons, what training chose and the data-need
estimate. Skips cleanly (exit 0) when the data is absent.

    .venv/bin/python bench/data_need_banking77.py --records 500 --out /tmp/b14-500 [--intents confusable]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/data/banking77")


# 14 intents BANKING77 is known to confuse (top-ups, transfers and what is pending): a harder workload.
CONFUSABLE = (
    "pending_top_up,top_up_failed,top_up_reverted,verify_top_up,top_up_limits,top_up_by_card_charge,"
    "top_up_by_bank_transfer_charge,top_up_by_cash_or_cheque,topping_up_by_card,automatic_top_up,"
    "pending_transfer,transfer_not_received_by_recipient,transfer_timing,balance_not_updated_after_bank_transfer"
)


def write_traffic(
    data: Path, out: Path, records: int, labels: int, seed: int, chosen: str | None = None
) -> tuple[Path, list[str]]:
    known = json.loads((data / "categories.json").read_text(encoding="utf-8"))
    intents = [i for i in chosen.split(",") if i in known] if chosen else known[:labels]
    with (data / "train.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["category"] in intents]
    rows = random.Random(seed).sample(rows, min(records, len(rows)))
    path = out / "traffic" / "train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "category": r["category"]} for r in rows)
    return path, intents


def write_config(out: Path, traffic: Path, intents: list[str], student: dict[str, Any] | None = None) -> Path:
    workload: dict[str, Any] = {
        "id": "b14",
        "task": "classification",
        "labels": intents,
        "sources": [
            {
                "path": str(traffic.resolve()),
                "format": "csv",
                "mapping": {
                    "prompt": "text",
                    "response": "category",
                    "system_prompt": "Classify the bank customer's message into one of: "
                    + ", ".join(intents),
                },
            }
        ],
        # Defaults on purpose: epochs, learning rate and max length are chosen from the data.
        "students": [{"name": "minilm", "kind": "encoder-classifier", "method": "full", **(student or {})}],
        "gate": {"min_cost_reduction": 0.9},
        "curation": {"near_dup_threshold": 0.9, "export": []},
    }
    config = {"home": str((out / ".flywheel").resolve()), "teacher": {"model": "gpt-4o-mini"}}
    path = out / "flywheel.yaml"
    path.write_text(yaml.safe_dump(config | {"workloads": [workload]}, sort_keys=False), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--labels", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--student", default="{}", help="JSON fields for the student, e.g. '{\"epochs\": 3}' (a baseline)"
    )
    parser.add_argument(
        "--intents",
        default=None,
        help="Comma-separated intents, or 'confusable' (default: the first --labels)",
    )
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skipped: no BANKING77 at {args.data}")
        return 0
    chosen = CONFUSABLE if args.intents == "confusable" else args.intents
    traffic, intents = write_traffic(args.data, args.out, args.records, args.labels, args.seed, chosen)
    config = write_config(args.out, traffic, intents, json.loads(args.student))
    command = [sys.executable, "-c", "from flywheel.cli import app; app()"]
    command += ["--config", str(config), "run", "-w", "b14", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    (args.out / "run.json").write_text(done.stdout, encoding="utf-8")
    if done.returncode:
        print(done.stderr[-3000:])
        return done.returncode
    turn = json.loads(done.stdout)["turns"]["b14"]
    print(json.dumps(summary(turn), indent=1))
    return 0


def summary(turn: dict[str, Any]) -> dict[str, Any]:
    keys = ("records_in", "curated_out", "decision", "reasons", "student_score", "student_ci", "target")
    return {k: turn.get(k) for k in (*keys, "eval_rows_needed", "data_need")}


if __name__ == "__main__":
    sys.exit(main())
