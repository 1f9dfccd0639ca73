"""Artifact directories, model cards and the warehouse registry rows for trained candidates.

Layout: FLYWHEEL_HOME/models/<workload>/<version>/ holds the model (safetensors), tokenizer,
`flywheel.json` (what `load_student` needs, plus provenance) and README.md (the model card);
post-training variants live in subfolders (`pruned/`, `int8/`) with the same files.
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from flywheel.records import utcnow
from flywheel.train.student import MANIFEST


def fingerprint(*parts: Any) -> str:
    """sha256 of the parts as canonical JSON: same snapshot, settings, seed and data -> same value."""
    payload = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(payload).hexdigest()


def model_version(run_fingerprint: str, at: datetime | None = None) -> str:
    stamp = (at or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    return f"v{stamp}-{run_fingerprint[:8]}"


def code_version() -> str:
    """`git describe` of the checkout when there is one, else the installed package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        if result.stdout.strip():
            return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flywheel")
    except PackageNotFoundError:
        return "unknown"


def loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per logged training step: step, loss, learning_rate, epoch."""
    rows = []
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            rows.append(
                {
                    "step": int(entry["step"]),
                    "loss": float(entry["loss"]),
                    "learning_rate": _float(entry.get("learning_rate")),
                    "epoch": _float(entry.get("epoch")),
                }
            )
    return rows


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str)
    (directory / MANIFEST).write_bytes(data + b"\n")
    (directory / "README.md").write_text(model_card(manifest), encoding="utf-8")


def model_card(manifest: dict[str, Any]) -> str:
    """A human-readable card: what it is, what it learned from, how it trained and how fast it is."""
    metrics = manifest.get("metrics") or {}
    curve = manifest.get("loss_curve") or []
    lines = [
        f"# {manifest['model_id']}",
        "",
        f"Student for workload `{manifest['workload_id']}` ({manifest['task']}), trained by flywheel.",
        "",
        "| field | value |",
        "|---|---|",
        f"| candidate | {manifest['name']} |",
        f"| kind | {manifest['kind']} |",
        f"| base | {manifest.get('base') or 'scratch'} |",
        f"| method | {manifest['method']} |",
        f"| distillation | {manifest.get('distillation', 'sequence')} |",
        f"| variant | {manifest.get('variant', 'base')} |",
        f"| snapshot | {manifest.get('snapshot_id') or '-'} |",
        f"| parameters | {manifest.get('params', 0):,} |",
        f"| size on disk | {manifest.get('size_bytes', 0):,} bytes |",
        f"| training time | {manifest.get('train_seconds', 0):.1f} s |",
        f"| training tokens/s | {manifest.get('tokens_per_second', 0):.1f} |",
        f"| hardware | {manifest.get('hardware', {}).get('device', '?')} |",
        f"| code version | {manifest.get('code_version', '?')} |",
        f"| created | {manifest.get('created_at', '')} |",
        "",
        "## Metrics",
        "",
        *[f"- {key}: {value}" for key, value in sorted(metrics.items())],
        "",
        *fit_section(manifest.get("fit"), manifest.get("learning_curve")),
        "## Loss curve",
        "",
        _sparkline([row["loss"] for row in curve]),
        "",
        "| step | loss |",
        "|---|---|",
        *[f"| {row['step']} | {row['loss']:.4f} |" for row in _thin(curve, 20)],
        "",
        "## Training config",
        "",
        "```json",
        orjson.dumps(
            manifest.get("config") or {}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        ).decode(),
        "```",
        "",
    ]
    return "\n".join(lines)


def fit_section(fit: dict[str, Any] | None, curve: dict[str, Any] | None) -> list[str]:
    """How the student was fit to its data (flywheel.train.search): what was chosen and why."""
    if not fit:
        return []
    length, chosen = fit.get("max_length") or {}, fit.get("chosen") or {}
    val = chosen.get("val") or {}
    lines = [
        "## How it was fit",
        "",
        f"- max length {length.get('max_length')} ({length.get('source')}): training inputs p50 "
        f"{length.get('p50')}, p95 {length.get('p95')}, longest {length.get('longest')} tokens; "
        f"{length.get('truncated')} of {length.get('total')} truncated; "
        f"model limit {length.get('model_limit')}",
        *[f"- {reason}" for reason in (fit.get("plan") or {}).get("reasons", [])],
        *(
            [
                f"- chosen: learning rate {chosen.get('learning_rate')}, best val epoch {val.get('epoch')} "
                f"of {val.get('epochs_run')} run, val accuracy {val.get('accuracy')}"
            ]
            if chosen
            else []
        ),
        *[f"- trial lr {t['learning_rate']}: {_trial_text(t)}" for t in fit.get("trials", [])],
        *[f"- WARNING: {w}" for w in fit.get("warnings", [])],
    ]
    if curve and curve.get("points"):
        points = ", ".join(f"{p['n']}: {p['score']}" for p in curve["points"])
        lines.append(f"- learning curve ({curve.get('metric')}, records: score): {points}")
    return [*lines, ""]


def _trial_text(trial: dict[str, Any]) -> str:
    if "skipped" in trial:
        return f"skipped ({trial['skipped']})"
    return f"val accuracy {(trial.get('val') or {}).get('accuracy')}, {trial.get('seconds')} s"


def _thin(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    if len(rows) <= count:
        return rows
    stride = (len(rows) - 1) / (count - 1)
    return [rows[round(i * stride)] for i in range(count)]


def _sparkline(values: list[float]) -> str:
    if not values:
        return "(no steps logged)"
    bars = "▁▂▃▄▅▆▇█"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    sampled = [row for row in _thin([{"v": v} for v in values], 60)]
    return "`" + "".join(bars[int((r["v"] - low) / span * (len(bars) - 1))] for r in sampled) + "`"
