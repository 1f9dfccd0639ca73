"""`flywheel init --from LOGS`: a flywheel.yaml written from real logs instead of a template.

Per log file: its format (connectors.detect), then a sample of its calls grouped by workload (NVIDIA
logs name their own workloads; other formats get one workload named after the option or the file).
Per workload: the task type guess with its evidence, and for classification the label set with counts
and the label parser (flywheel.infer), and the static prompt template (quality.pruning.find_template).
The result is validated as a config before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flywheel.config import FlywheelConfig
from flywheel.infer import guess_task, read_sample
from flywheel.quality.pruning import find_template
from flywheel.records import Interaction

SAMPLE_CALLS = 5000
PREVIEW_CHARS = 100
# The student `init` writes for each task: one that trains offline on CPU and fits the task's answers
# (README, "Student kinds"). chat needs free text, which only the causal kinds write.
RECOMMENDED_STUDENTS: dict[str, dict[str, Any]] = {
    "classification": {"name": "minilm", "kind": "encoder-classifier"},
    "extraction": {"name": "minilm-extractor", "kind": "encoder-extractor"},
    "tool_call": {"name": "minilm-extractor", "kind": "encoder-extractor"},
    "chat": {"name": "scratch-tiny", "kind": "scratch", "size": "tiny"},
}
# Tool-call traffic whose requests bring their own functions: a closed set of names cannot answer it.
VARYING_TOOLS_STUDENT: dict[str, Any] = {"name": "minilm-schema-tool", "kind": "schema-tool"}
FIXED_TOOLSET_SHARE = 0.8  # the most common tool set in at least this share of calls: one fixed set


def recommended_student(task: str, tools_vary: bool = False) -> dict[str, Any]:
    if task == "tool_call" and tools_vary:
        return dict(VARYING_TOOLS_STUDENT)
    return dict(RECOMMENDED_STUDENTS.get(task, RECOMMENDED_STUDENTS["chat"]))


def tools_vary(calls: list[Interaction]) -> bool:
    """True when no single set of offered function names covers most calls (per-request schemas)."""
    sets: dict[frozenset[str], int] = {}
    for call in calls:
        tools = call.request.get("tools") or []
        names = frozenset(str((t.get("function") or {}).get("name")) for t in tools if isinstance(t, dict))
        if names:
            sets[names] = sets.get(names, 0) + 1
    total = sum(sets.values())
    return bool(total) and max(sets.values()) < FIXED_TOOLSET_SHARE * total


@dataclass(slots=True)
class InferredWorkload:
    workload_id: str
    n_calls: int
    task: str
    reason: str
    sources: list[dict[str, str]] = field(default_factory=list)
    labels: dict[str, Any] | None = None  # LabelInference.as_dict()
    template: dict[str, Any] | None = None
    tools_vary: bool = False  # tool_call: requests offer different function sets

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.workload_id,
            "task": self.task,
            "description": f"inferred from {self.n_calls} logged calls: {self.reason}",
        }
        if self.labels is not None:
            out["labels"] = list(self.labels["labels"])
            if self.labels["label_parser"]:
                out["label_parser"] = self.labels["label_parser"]
        out["sources"] = self.sources
        out["students"] = [recommended_student(self.task, self.tools_vary)]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload_id": self.workload_id,
            "n_calls": self.n_calls,
            "task": self.task,
            "reason": self.reason,
            "sources": self.sources,
            "labels": self.labels,
            "template": self.template,
        }


def infer_workloads(
    paths: list[Path], *, workload_id: str | None = None, fmt: str = "auto", config_dir: Path | None = None
) -> list[InferredWorkload]:
    """One InferredWorkload per workload found in the logs at `paths` (files already resolved)."""
    from connectors.detect import detect_format

    calls: dict[str, list[Interaction]] = {}
    sources: dict[str, list[dict[str, str]]] = {}
    for path in paths:
        kind = detect_format(path) if fmt == "auto" else fmt
        default_id = workload_id or safe_id(path)
        for interaction in read_sample(path, kind, default_id, SAMPLE_CALLS):
            wid = workload_id or interaction.workload_id or default_id
            calls.setdefault(wid, []).append(interaction)
            entry = {"path": _relative(path, config_dir), "format": kind}
            if entry not in sources.setdefault(wid, []):
                sources[wid].append(entry)
    return [_infer_one(wid, calls[wid], sources[wid]) for wid in sorted(calls)]


def _infer_one(workload_id: str, calls: list[Interaction], sources: list[dict[str, str]]) -> InferredWorkload:
    guess = guess_task(calls)
    conversations = [i.request.get("messages") or [] for i in calls if i.status == "ok"]
    template = find_template(workload_id, conversations)
    found = None
    if template is not None:
        preview = " ".join(
            str(m.get("content") or "") for m in template.messages if isinstance(m.get("content"), str)
        )
        preview = (preview + " " + (template.text_prefix or "")).strip()
        found = {"template_id": template.template_id, "n_static_tokens": template.n_static_tokens,
                 "preview": preview[:PREVIEW_CHARS]}  # fmt: skip
    return InferredWorkload(
        workload_id=workload_id,
        n_calls=len(calls),
        task=guess.task,
        reason=guess.reason,
        sources=sources,
        labels=guess.labels.as_dict() if guess.labels is not None else None,
        template=found,
        tools_vary=guess.task == "tool_call" and tools_vary(calls),
    )


def config_document(workloads: list[InferredWorkload]) -> tuple[dict[str, Any], str]:
    """(the config as data, validated; the YAML text with the evidence as comments)."""
    data: dict[str, Any] = {"home": ".flywheel", "workloads": [w.config() for w in workloads]}
    FlywheelConfig.model_validate(data)  # raises before anything is written
    lines = ["# flywheel.yaml written by `flywheel init --from` from real logs: check it, then ingest."]
    for workload in workloads:
        lines.append(f"# {workload.workload_id}: {workload.task} ({workload.reason})")
        if workload.labels:
            counts = ", ".join(f"{k}={v}" for k, v in workload.labels["labels"].items())
            lines.append(f"#   labels with counts: {counts}")
            if workload.labels["outliers"]:
                rare = ", ".join(f"{k}={v}" for k, v in list(workload.labels["outliers"].items())[:10])
                lines.append(f"#   rare answers left out of the label set: {rare}")
        if workload.template:
            t = workload.template
            lines.append(f"#   static prompt template {t['template_id']} ({t['n_static_tokens']} tokens): "
                         f"{t['preview']!r}")  # fmt: skip
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return data, "\n".join(lines) + "\n" + body


def safe_id(path: Path) -> str:
    """A workload id from a file name: `support logs.jsonl.gz` -> `support-logs`."""
    stem = path.name.split(".")[0]
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "workload"
    return cleaned[:64]


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return str(path)
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive
        return str(path.resolve())
