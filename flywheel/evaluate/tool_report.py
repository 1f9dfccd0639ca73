"""Markdown for the run report: each candidate's calibrated cascade and the per-tool metrics.

Pure functions of the `flywheel evaluate --json` object (EvaluationReport.as_dict), so the Prefect
artifact, the demo summary and the CLI show the same figures.
"""

from __future__ import annotations

from typing import Any


def cascade_lines(evaluation: dict[str, Any]) -> list[str]:
    """How much of the traffic each candidate can answer while the mix with the teacher meets the
    target (flywheel/evaluate/cascade.py), and the partial promotion when there was one."""
    cascades = evaluation.get("cascades") or []
    if not cascades:
        return []
    lines = [
        "## Cascade (student above the confidence threshold, teacher below)",
        "",
        "| model | claims | threshold | coverage | mix | mix CI low |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for c in cascades:
        threshold = "-" if c.get("threshold") is None else f"{c['threshold']:.4f}"
        lines.append(
            f"| {c['model']} | {c.get('claims', 'all')} | {threshold} | {c.get('coverage', 0.0):.1%} | "
            f"{_num(c.get('value'))} | {_num(c.get('ci_low'))} |"
        )
    chosen = evaluation.get("cascade")
    if evaluation.get("decision") == "promote_partial" and chosen:
        lines += [
            "",
            f"Promoted partially: `{chosen['model']}` answers {chosen['coverage']:.1%} of the traffic "
            f"(confidence >= {chosen['threshold']:.4f}); `flywheel serve` sends the rest to the teacher.",
        ]
    return [*lines, ""]


def tool_metric_lines(evaluation: dict[str, Any]) -> list[str]:
    """Per model: decision and function-name accuracy, then argument exact/F1 per tool and parameter."""
    found = evaluation.get("tool_metrics") or {}
    if not found:
        return []
    lines = ["## Per-tool metrics", ""]
    for model, metrics in found.items():
        overall = metrics.get("overall") or {}
        lines += [
            f"`{model}`: text-vs-tool decision accuracy {_num(overall.get('decision_accuracy'))}, "
            f"function-name accuracy on tool-call turns {_num(overall.get('name_accuracy'))}, "
            f"coverage {_num(overall.get('coverage'))}",
            "",
            "| tool | parameter | n | name | args exact | exact | F1 | coverage |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for tool, row in (metrics.get("tools") or {}).items():
            lines.append(
                f"| {tool} | | {row.get('n', '-')} | {_num(row.get('name_accuracy'))} | "
                f"{_num(row.get('arguments_exact'))} | | | {_num(row.get('coverage'))} |"
            )
            for name, param in (row.get("parameters") or {}).items():
                lines.append(
                    f"| | {name} | {param.get('n', '-')} | | | {_num(param.get('exact'))} | "
                    f"{_num(param.get('f1'))} | |"
                )
        lines.append("")
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
