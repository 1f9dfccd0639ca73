"""What training reads from the warehouse for a bundle: the snapshot's prompt template and the
`model` names the workload's logs used. (Kept apart from the bundle itself: serving never opens the
warehouse.)"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from flywheel.quality.pruning import load_template
from flywheel.store.db import Warehouse

TEMPLATE_OF_SNAPSHOT_SQL = """
SELECT report FROM curation_runs WHERE workload_id = ? AND snapshot_id = ?
ORDER BY finished_at DESC LIMIT 1
"""


def bundle_sources(
    warehouse: Warehouse, workload_id: str, snapshot_id: str | None
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """(the template curation pruned the snapshot with, the request model names of the workload)."""

    def read(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        models = con.execute(
            "SELECT DISTINCT json_extract_string(request, '$.model') AS m FROM interactions "
            "WHERE workload_id = ? AND m IS NOT NULL ORDER BY m",
            [workload_id],
        ).fetchall()
        return _snapshot_template(con, workload_id, snapshot_id), tuple(m for (m,) in models)

    if not warehouse.exists():
        return None, ()
    return warehouse.read(read)


def _snapshot_template(
    con: duckdb.DuckDBPyConnection, workload_id: str, snapshot_id: str | None
) -> dict[str, Any] | None:
    if snapshot_id is None:
        return None
    row = con.execute(TEMPLATE_OF_SNAPSHOT_SQL, [workload_id, snapshot_id]).fetchone()
    report = orjson.loads(row[0]) if row and row[0] else {}
    template_id = (report.get("template") or {}).get("template_id")
    if template_id is None:
        return None
    template = load_template(con, workload_id, template_id)
    if template is None:
        return None
    return {"template_id": template.template_id, **template.static_prefix}
