"""The run report: one markdown page per flywheel turn (Prefect artifact, demo summary, logs)."""

from __future__ import annotations

from typing import Any

from flywheel.evaluate.tool_report import cascade_lines, tool_metric_lines


def summarize_turn(workload_id: str, stages: dict[str, Any]) -> dict[str, Any]:
    """The figures a person asks about first, pulled out of the stage summaries."""
    curate = stages.get("curate") or {}
    evaluation = stages.get("evaluate") or {}
    costs = (stages.get("costs") or {}).get("workloads", {}).get(workload_id, {})
    models = {m["model"]: m for m in evaluation.get("models", [])}
    champion = evaluation.get("champion")
    student = models.get(evaluation.get("winner") or champion or "") or _best_student(models)
    teacher = models.get("teacher", {})
    return {
        "records_in": (stages.get("ingest") or {}).get("read"),
        "curated_in": curate.get("in"),
        "curated_out": curate.get("out"),
        "snapshot_id": curate.get("snapshot_id"),
        "decision": evaluation.get("decision", "skipped"),
        "reasons": evaluation.get("reasons", ["no new candidate"]),
        "target": (evaluation.get("target") or {}).get("text"),
        "eval_rows_needed": evaluation.get("eval_rows_needed"),
        "data_need": evaluation.get("data_need"),
        "champion": champion,
        "metric": evaluation.get("primary_metric"),
        "student_score": student.get("value"),
        "student_ci": [student.get("ci_low"), student.get("ci_high")] if student else None,
        "teacher_score": teacher.get("value"),
        "teacher_ci": [teacher.get("ci_low"), teacher.get("ci_high")] if teacher else None,
        "saved_pct": costs.get("saved_pct"),
        "projected_monthly_saved_usd": costs.get("projected_monthly_saved_usd"),
    }


def _best_student(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """With no winner and no champion, the best candidate is the one worth showing."""
    scored = [m for name, m in models.items() if name != "teacher" and m.get("value") is not None]
    return max(scored, key=lambda m: m["value"], default={})


def markdown_report(workload_id: str, stages: dict[str, Any], seconds: dict[str, float]) -> str:
    summary = summarize_turn(workload_id, stages)
    lines = [f"# Flywheel turn: {workload_id}", ""]
    lines += _funnel(stages)
    lines += training_lines(stages.get("train") or {})
    lines += _scores(stages.get("evaluate") or {})
    lines += [
        "## Decision",
        "",
        f"**{summary['decision']}**; champion: `{summary['champion'] or 'none (teacher serves)'}`",
        "",
    ]
    lines += [f"- {reason}" for reason in summary["reasons"]] + [""]
    if summary["target"]:
        lines += [f"Target: {summary['target']}", ""]
    if summary["eval_rows_needed"]:
        lines += [
            f"The eval split is too small to tell: about {summary['eval_rows_needed']} eval rows would "
            "resolve the margin (curate more traffic, then run again).",
            "",
        ]
    lines += data_need_lines(summary["data_need"])
    lines += cascade_lines(stages.get("evaluate") or {}) + tool_metric_lines(stages.get("evaluate") or {})
    lines += _costs(summary)
    lines += ["## Wall time per stage", "", "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {stage} | {value:.1f} |" for stage, value in seconds.items()]
    return "\n".join(lines) + "\n"


def _funnel(stages: dict[str, Any]) -> list[str]:
    ingest, curate = stages.get("ingest") or {}, stages.get("curate") or {}
    lines = ["## Data funnel", "", "| step | records |", "| --- | ---: |"]
    lines.append(f"| read | {ingest.get('read', 0):,} |")
    lines.append(f"| ingested (new) | {ingest.get('ingested', 0):,} |")
    lines.append(f"| quarantined at ingest | {ingest.get('quarantined', 0):,} |")
    lines.append(f"| curation in | {curate.get('in', 0):,} |")
    for reason, count in sorted((curate.get("rejected") or {}).items(), key=lambda kv: -kv[1]):
        lines.append(f"| rejected: {reason} | {count:,} |")
    lines.append(f"| curation out | {curate.get('out', 0):,} |")
    splits = curate.get("splits") or {}
    lines.append(
        f"| train / val / eval | {' / '.join(str(splits.get(s, 0)) for s in ('train', 'val', 'eval'))} |"
    )
    return [*lines, ""]


def _scores(evaluation: dict[str, Any]) -> list[str]:
    if not evaluation.get("models"):
        return ["## Scores", "", "No evaluation this turn (nothing new to judge).", ""]
    metric = evaluation.get("primary_metric", "score")
    lines = ["## Scores", "", f"| model | {metric} | 95% CI | $/1k requests |", "| --- | ---: | --- | ---: |"]
    for model in evaluation["models"]:
        cost = model.get("cost_per_1k")
        lines.append(
            f"| {model['model']} | {_num(model.get('value'))} | "
            f"{_num(model.get('ci_low'))} - {_num(model.get('ci_high'))} | "
            f"{'-' if cost is None else f'{cost:.4g}'} |"
        )
    return [*lines, ""]


def training_lines(train: dict[str, Any]) -> list[str]:
    """What training chose for each candidate (flywheel.train.search), and the warnings it raised."""
    fitted = [c for c in train.get("candidates") or [] if c.get("fit") and c.get("variant", "base") == "base"]
    if not fitted:
        return []
    lines = ["## Training", ""]
    for candidate in fitted:
        fit = candidate["fit"]
        lines.append(
            f"- `{candidate['name']}`: learning rate {fit.get('learning_rate')}, best val epoch "
            f"{fit.get('best_epoch')} of {fit.get('epochs_run')} (cap {fit.get('epochs_cap')}), val "
            f"accuracy {fit.get('val_accuracy')}; max length {fit.get('max_length')} "
            f"({fit.get('max_length_source')}, {fit.get('truncated')} truncated)"
        )
        lines += [f"  - {reason}" for reason in fit.get("reasons", [])]
        lines += [f"  - **warning**: {warning}" for warning in fit.get("warnings", [])]
    return [*lines, ""]


def data_need_lines(need: dict[str, Any] | None) -> list[str]:
    """The data-need estimate: records to reach the target, the curve behind it, the rare slices."""
    if not need:
        return []
    lines = ["## Data need", "", f"Target {need['target']:.3f} ({need.get('curve_metric') or 'score'})."]
    status = need.get("status")
    if status == "estimated":
        span = need.get("records_needed_range") or [None, None]
        high = "-" if span[1] is None else f"{span[1]:,}"
        lines.append(
            f"About **{need['records_needed']:,}** {need.get('unit', 'training records')} would reach it "
            f"(10-90%: {span[0]:,} - {high}; now {need.get('current_records', 0):,})."
        )
    elif status == "not_reachable":
        lines.append(f"**Not reachable with this student**: {need.get('note', '')}.")
    else:
        lines.append(need.get("note") or "No estimate.")
    curve = ", ".join(f"{n:,}: {score:.3f}" for n, score in need.get("curve", []))
    lines += ["", f"Learning curve (records: score) of `{need.get('model')}`: {curve}", ""]
    rare = need.get("rare_slices") or []
    if rare:
        shown = ", ".join(f"{r['slice']} ({r['n']})" for r in rare[:15])
        more = f" and {len(rare) - 15} more" if len(rare) > 15 else ""
        lines += [f"Slices that lack data (rare at curation): {shown}{more}.", ""]
    return lines


def _costs(summary: dict[str, Any]) -> list[str]:
    saved, monthly = summary["saved_pct"], summary["projected_monthly_saved_usd"]
    return [
        "## Cost",
        "",
        f"- saved vs teacher: {'-' if saved is None else f'{saved:.1%}'}",
        f"- projected monthly savings: {'-' if monthly is None else f'${monthly:,.2f}'}",
        "",
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
