"""Curation on banking77: train.csv read as a teacher's logs (the `category` column is its answer).

Ingests /work/shared/data/banking77/train.csv through the csv connector with a column mapping into a
fresh warehouse, then runs `curate_workload` on it in this process and prints the funnel, the slice
caps that were applied, the timings and the snapshot hash. The bench config caps every intent at
`--max-per-slice` examples of the training pool (banking77 is nearly balanced, so a share cap alone
would not bite) to show the de-bias step working. Skips cleanly (exit 0) when the data is absent.

    .venv/bin/python bench/curate_banking77.py [--data DIR] [--max-per-slice 120] [--no-export]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

from flywheel.config import WorkloadConfig  # noqa: E402
from flywheel.curate import curate_workload  # noqa: E402
from flywheel.ingest import ingest_paths  # noqa: E402
from flywheel.store.db import Warehouse  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/banking77")


def workload_config(data: Path, max_per_slice: int, export: bool) -> WorkloadConfig:
    labels = json.loads((data / "categories.json").read_text(encoding="utf-8"))
    return WorkloadConfig.model_validate(
        {
            "id": "banking77",
            "task": "classification",
            "labels": labels,
            "sources": [
                {"path": str(data / "train.csv"), "format": "csv",
                 "mapping": {"prompt": "text", "response": "category"}}
            ],
            "curation": {"max_per_slice": max_per_slice, "export": ["parquet", "hf"] if export else []},
        }
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--max-per-slice", type=int, default=120)
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"skip: {args.data}/train.csv not found")
        return 0
    workload = workload_config(args.data, args.max_per_slice, not args.no_export)
    with tempfile.TemporaryDirectory(prefix="bench-curate-") as tmp:
        home = Path(tmp)
        warehouse = Warehouse(home / "warehouse.duckdb")
        started = time.monotonic()
        source = workload.sources[0]
        ingest = ingest_paths(warehouse, [source.path], workload_id=workload.id, fmt="csv",
                              mapping=source.mapping.model_dump())  # fmt: skip
        ingest_s = time.monotonic() - started
        started = time.monotonic()
        report = curate_workload(warehouse, workload, home=home)
        curate_s = time.monotonic() - started
        again = curate_workload(warehouse, workload, home=home)
    result = report.as_dict()
    print(f"ingest: {ingest.total('ingested'):,} interactions in {ingest_s:.1f}s")
    print(f"curate: {curate_s:.1f}s wall (in-process, imports included); funnel in={result['in']:,} "
          f"out={result['out']:,} splits={result['splits']}")  # fmt: skip
    print(f"stages (s): {result['timings']}")
    print(f"rejected: {result['rejected']}")
    print(f"dedup: {result['dedup']}  pii: {result['pii']}")
    slices = result["slices"]
    before, after = slices["before"], slices["after"]
    print(f"label slices: {before['slices']} labels, max share {before['max_share']:.2%} -> "
          f"{after['max_share']:.2%}, entropy {before['entropy_bits']:.3f} -> "
          f"{after['entropy_bits']:.3f} bits")  # fmt: skip
    capped = slices["capped"]
    print(
        f"cap applied (max_per_slice={args.max_per_slice}): {len(capped)} labels capped, e.g. "
        + ", ".join(f"{k} {v['before']}->{v['after']}" for k, v in list(capped.items())[:5])
    )
    print(f"rare (< min_slice_count): {slices.get('rare')}")
    same = again.content_hash == report.content_hash
    figure("curate_banking77", f"curate banking77 train.csv ({result['in']:,} rows)", round(curate_s, 1), "s",
           target="< 30 s", passed=curate_s < 30)  # fmt: skip
    print(f"snapshot {result['snapshot_id']} content_hash {result['content_hash'][:16]}; "
          f"re-run identical: {same} (reused={again.reused_snapshot})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
