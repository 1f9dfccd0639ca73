"""Model registry: stages (candidate / champion / retired), promotions history, rollback, model cards.

Training inserts candidates into the `models` table; the registry moves them between stages. Each
workload has at most one champion. Every promotion, manual promotion and rollback is a `promotions`
row (who became champion, who was before, why), written in the same transaction as the stage changes,
and then the champions manifest HOME/champions.json is rewritten atomically: the serving stage reads
only that file, never the warehouse.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from flywheel.layout import MANIFEST_NAME
from flywheel.records import utcnow
from flywheel.store.db import Warehouse

STAGES = ("candidate", "champion", "retired")
ACTIONS = ("promote", "rollback", "manual")
TEACHER = "teacher"  # a workload rolled back to its teacher: no champion, every call proxied
CARD_START = "<!-- flywheel:evaluation:start -->"
CARD_END = "<!-- flywheel:evaluation:end -->"
# What training registers; a new model starts as a candidate (the table's default stage).
REGISTERED_COLUMNS = (
    "model_id",
    "workload_id",
    "name",
    "kind",
    "base",
    "method",
    "path",
    "snapshot_id",
    "params",
    "size_bytes",
    "config",
    "code_version",
    "teacher",
    "train_seconds",
    "tokens_per_second",
    "metrics",
    "created_at",
)
MODEL_COLUMNS = ", ".join((*REGISTERED_COLUMNS[:-1], "stage", REGISTERED_COLUMNS[-1]))


class RegistryError(ValueError):
    """A registry request that cannot be honoured (unknown model, nothing to roll back to...)."""


@dataclass(frozen=True, slots=True)
class ModelRecord:
    model_id: str
    workload_id: str
    name: str
    kind: str
    base: str | None
    method: str | None
    path: str
    snapshot_id: str | None
    params: int | None
    size_bytes: int | None
    config: Any
    code_version: str | None
    teacher: str | None
    train_seconds: float | None
    tokens_per_second: float | None
    metrics: Any
    stage: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Promotion:
    promotion_id: str
    workload_id: str
    model_id: str
    previous_model_id: str | None
    action: str
    reason: str
    run_id: str | None
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Registry:
    """The registry over a warehouse; `home` is where the champions manifest lives."""

    def __init__(self, warehouse: Warehouse, home: str | os.PathLike[str]) -> None:
        self.warehouse = warehouse
        self.home = Path(home)

    @property
    def manifest_path(self) -> Path:
        return self.home / MANIFEST_NAME

    def artifact_dir(self, record: ModelRecord) -> Path:
        path = Path(record.path).expanduser()
        return path if path.is_absolute() else self.home / path

    def list_models(self, workload_id: str | None = None, stage: str | None = None) -> list[ModelRecord]:
        if stage is not None and stage not in STAGES:
            raise RegistryError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
        return self._read(lambda con: _select_models(con, workload_id, stage))

    def get(self, model_id: str) -> ModelRecord:
        found = self._read(lambda con: _select_models(con, None, None, model_id))
        if not found:
            raise RegistryError(f"unknown model {model_id!r} (see `flywheel models`)")
        return found[0]

    def champion(self, workload_id: str) -> ModelRecord | None:
        found = self.list_models(workload_id, "champion")
        return found[0] if found else None

    def history(self, workload_id: str | None = None) -> list[Promotion]:
        return self._read(lambda con: _select_promotions(con, workload_id))

    def _read(self, fn: Any) -> list[Any]:
        """Read with the schema in place; no warehouse yet means nothing registered."""
        if not self.warehouse.exists():
            return []
        self.warehouse.ensure_schema()
        return self.warehouse.read(fn)

    def promote(
        self,
        model_id: str,
        reason: str,
        *,
        action: str = "manual",
        run_id: str | None = None,
        serving: dict[str, Any] | None = None,
    ) -> Promotion:
        """Make `model_id` its workload's champion; the previous champion is retired.

        serving: how serve must run it, stored as the model's `metrics.serving` in the same transaction
        and written to the manifest: {"coverage", "threshold", "claims"} of a partial promotion (the
        calibrated cascade), {"coverage": 1.0} of a full one. None keeps what the model has (a manual
        promotion or a rollback serves a model the way it was last promoted)."""
        if action not in ("promote", "manual"):
            raise RegistryError(f"promote action must be 'promote' or 'manual', got {action!r}")
        if not reason.strip():
            raise RegistryError("a promotion needs a reason")
        record = self.get(model_id)
        self._require_artifact(record)

        def apply(con: duckdb.DuckDBPyConnection) -> Promotion:
            current = _select_models(con, record.workload_id, "champion")
            previous = current[0].model_id if current else None
            if previous == model_id:
                raise RegistryError(f"{model_id} is already the champion of {record.workload_id}")
            if serving is not None:
                _merge_metrics(con, model_id, {"serving": serving})
            return _switch(con, record.workload_id, model_id, previous, action, reason, run_id)

        promotion = self.warehouse.write(apply)
        self.write_manifest()
        return promotion

    def rollback(self, workload_id: str, reason: str = "rollback", to: str | None = None) -> Promotion:
        """Restore the champion that preceded the current one (repeatable: walks back the history).

        to: "teacher" leaves the workload without a champion (every call goes to the teacher), a
        model id of the workload makes that model the champion; either way recorded as a rollback.
        """

        def apply(con: duckdb.DuckDBPyConnection) -> Promotion:
            current = _select_models(con, workload_id, "champion")
            if not current and to is None:
                raise RegistryError(f"workload {workload_id!r} has no champion to roll back")
            previous = current[0].model_id if current else None
            target = to or _previous_champion(_select_promotions(con, workload_id), previous or "")
            if target is None:
                raise RegistryError(f"workload {workload_id!r}: no previous champion to roll back to")
            if target == TEACHER:
                if previous is None:
                    raise RegistryError(f"workload {workload_id!r} is already served by its teacher")
                return _switch(con, workload_id, TEACHER, previous, "rollback", reason, None)
            found = _select_models(con, None, None, target)
            if not found or found[0].workload_id != workload_id:
                raise RegistryError(f"{target!r} is not a model of workload {workload_id!r} in the registry")
            if target == previous:
                raise RegistryError(f"{target} is already the champion of {workload_id}")
            self._require_artifact(found[0])
            return _switch(con, workload_id, target, previous, "rollback", reason, None)

        promotion = self.warehouse.write(apply)
        self.write_manifest()
        return promotion

    def retire(self, model_ids: list[str]) -> None:
        """Move candidates out of contention (champions are only replaced through promote/rollback)."""
        if not model_ids:
            return

        def apply(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "UPDATE models SET stage = 'retired' "
                "WHERE stage = 'candidate' AND list_contains(?, model_id)",
                [list(model_ids)],
            )

        self.warehouse.write(apply)

    def record_metrics(self, model_id: str, metrics: dict[str, Any]) -> None:
        """Merge evaluation metrics into the model's `metrics` JSON."""

        self.warehouse.write(lambda con: _merge_metrics(con, model_id, metrics))

    def write_manifest(self) -> Path:
        """Rewrite HOME/champions.json from the warehouse, atomically (temp file, fsync, replace)."""
        champions = {}
        promoted_at = {(p.workload_id, p.model_id): p.at for p in self.history()}
        for record in self.list_models(stage="champion"):
            at = promoted_at.get((record.workload_id, record.model_id), record.created_at)
            champions[record.workload_id] = {
                "model_id": record.model_id,
                "path": str(self.artifact_dir(record).resolve()),
                "kind": record.kind,
                "promoted_at": at.isoformat(),
                **serving_entry(record.metrics),
            }
        payload = orjson.dumps(champions, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        atomic_write(self.manifest_path, payload)
        return self.manifest_path

    def update_card(self, model_id: str, section: str) -> Path:
        """Replace the evaluation section of the model card (README.md in the model dir)."""
        record = self.get(model_id)
        card = self.artifact_dir(record) / "README.md"
        text = card.read_text(encoding="utf-8") if card.exists() else default_card(record)
        block = f"{CARD_START}\n{section.strip()}\n{CARD_END}\n"
        if CARD_START in text and CARD_END in text:
            head, rest = text.split(CARD_START, 1)
            text = head + block + rest.split(CARD_END, 1)[1].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n" + block
        atomic_write(card, text.encode())
        return card

    def _require_artifact(self, record: ModelRecord) -> None:
        if not self.artifact_dir(record).is_dir():
            raise RegistryError(
                f"{record.model_id}: artifact directory {self.artifact_dir(record)} is missing"
            )


def serving_entry(metrics: Any) -> dict[str, Any]:
    """The manifest fields of a partially promoted model: coverage, threshold (serve's confidence
    threshold for it) and claims; nothing for a model promoted on all traffic."""
    serving = metrics.get("serving") if isinstance(metrics, dict) else None
    if not isinstance(serving, dict) or serving.get("threshold") is None:
        return {}
    return {key: serving.get(key) for key in ("coverage", "threshold", "claims")}


def _merge_metrics(con: duckdb.DuckDBPyConnection, model_id: str, metrics: dict[str, Any]) -> None:
    """Merge `metrics` into the model's `metrics` JSON, inside the caller's transaction."""
    row = con.execute("SELECT metrics FROM models WHERE model_id = ?", [model_id]).fetchone()
    if row is None:
        raise RegistryError(f"unknown model {model_id!r}")
    merged = {**_json(row[0]), **metrics} if isinstance(_json(row[0]), dict) else dict(metrics)
    con.execute(
        "UPDATE models SET metrics = ? WHERE model_id = ?",
        [orjson.dumps(merged, default=str).decode(), model_id],
    )


def default_card(record: ModelRecord) -> str:
    lineage = [
        ("workload", record.workload_id),
        ("kind", record.kind),
        ("base", record.base),
        ("method", record.method),
        ("parameters", record.params),
        ("dataset snapshot", record.snapshot_id),
        ("teacher", record.teacher),
        ("code version", record.code_version),
        ("created", record.created_at),
    ]
    rows = "\n".join(f"| {name} | {value if value is not None else '-'} |" for name, value in lineage)
    return f"# {record.model_id}\n\n## Lineage\n\n| | |\n|---|---|\n{rows}\n"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` so readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _switch(
    con: duckdb.DuckDBPyConnection,
    workload_id: str,
    model_id: str,
    previous: str | None,
    action: str,
    reason: str,
    run_id: str | None,
) -> Promotion:
    """Stage changes and the promotions row, inside the caller's transaction."""
    con.execute(
        "UPDATE models SET stage = 'retired' WHERE workload_id = ? AND stage = 'champion'", [workload_id]
    )
    con.execute("UPDATE models SET stage = 'champion' WHERE model_id = ?", [model_id])
    last = con.execute('SELECT max("at") FROM promotions WHERE workload_id = ?', [workload_id]).fetchone()
    at = utcnow()
    if last and last[0] is not None and at <= last[0]:
        at = last[0] + timedelta(microseconds=1)  # keep the history strictly ordered
    promotion = Promotion(uuid.uuid4().hex, workload_id, model_id, previous, action, reason, run_id, at)
    con.execute(
        "INSERT INTO promotions (promotion_id, workload_id, model_id, previous_model_id, action, reason, "
        'run_id, "at") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [promotion.promotion_id, workload_id, model_id, previous, action, reason, run_id, at],
    )
    return promotion


def _previous_champion(history: list[Promotion], current: str) -> str | None:
    """Replay the history as a stack of champions; a rollback pops it."""
    stack: list[str] = []
    for item in history:
        if item.action == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1] != item.model_id:
            stack.append(item.model_id)
    while stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None


def _select_models(
    con: duckdb.DuckDBPyConnection, workload_id: str | None, stage: str | None, model_id: str | None = None
) -> list[ModelRecord]:
    where, params = [], []
    for column, value in (("workload_id", workload_id), ("stage", stage), ("model_id", model_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {MODEL_COLUMNS} FROM models"
    sql += (" WHERE " + " AND ".join(where)) if where else ""
    rows = con.execute(sql + " ORDER BY workload_id, created_at, model_id", params).fetchall()
    return [_model_record(row) for row in rows]


def _model_record(row: tuple[Any, ...]) -> ModelRecord:
    values = list(row)
    values[10], values[15] = _json(values[10]), _json(values[15])
    return ModelRecord(*values)


def _select_promotions(con: duckdb.DuckDBPyConnection, workload_id: str | None) -> list[Promotion]:
    sql = (
        'SELECT promotion_id, workload_id, model_id, previous_model_id, action, reason, run_id, "at" '
        "FROM promotions"
    )
    params: list[Any] = []
    if workload_id is not None:
        sql += " WHERE workload_id = ?"
        params.append(workload_id)
    rows = con.execute(sql + ' ORDER BY "at", promotion_id', params).fetchall()
    return [Promotion(*row) for row in rows]


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def register_candidates(
    warehouse: Warehouse, rows: list[dict[str, Any]], steps: dict[str, list[dict]]
) -> None:
    """Insert trained candidates and their loss curves in one short transaction (the one writer of new
    rows in `models`; stage changes are Registry's); re-registering a model id replaces it."""
    if not rows:
        return

    def write(con: Any) -> None:
        placeholders = ", ".join("?" for _ in REGISTERED_COLUMNS)
        for row in rows:
            con.execute("DELETE FROM training_steps WHERE model_id = ?", [row["model_id"]])
            con.execute("DELETE FROM models WHERE model_id = ?", [row["model_id"]])
            values = [_column_value(row, column) for column in REGISTERED_COLUMNS]
            con.execute(
                f"INSERT INTO models ({', '.join(REGISTERED_COLUMNS)}) VALUES ({placeholders})", values
            )
        at = utcnow()
        step_rows = [
            (model_id, s["step"], s["loss"], s["learning_rate"], s["epoch"], at)
            for model_id, curve in steps.items()
            for s in curve
        ]
        if step_rows:
            con.executemany(
                'INSERT INTO training_steps (model_id, step, loss, learning_rate, epoch, "at") '
                "VALUES (?, ?, ?, ?, ?, ?)",
                step_rows,
            )

    warehouse.write(write)


def _column_value(row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    if column in ("config", "metrics") and value is not None:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    return value
