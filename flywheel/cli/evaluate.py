"""Evaluation and registry commands: evaluate, models, promote, rollback."""

from __future__ import annotations

from typing import Any

import typer

from flywheel.cli.app import (
    CliState,
    JsonOpt,
    Table,
    app,
    emit,
    err,
    fail,
    guarded,
    out,
    progress_bar,
    state,
    warn_all,
)
from flywheel.config import ConfigError
from flywheel.hardware_profiles import DEFAULT_PROFILE
from flywheel.registry import ModelRecord, Registry, RegistryError

REFERENCES = ("auto", "gold", "teacher")
DECISION_COLOURS = {
    "promote": "green",
    "promote_partial": "cyan",
    "reject": "yellow",
    "insufficient_eval": "magenta",
}


def _registry(cli: CliState) -> Registry:
    return Registry(cli.warehouse(), cli.home)


@app.command()
def evaluate(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id"),
    model: list[str] = typer.Option(
        None, "--model", "-m", help="Evaluate these model ids (default: candidates)"
    ),
    hardware: str = typer.Option(DEFAULT_PROFILE, "--hardware", help="Cost profile of the student's machine"),
    usd_per_hour: float | None = typer.Option(None, "--usd-per-hour", help="Overrides --hardware's $/h"),
    reference: str = typer.Option("auto", "--reference", help="auto | gold | teacher"),
    resamples: int = typer.Option(1000, "--resamples", min=100, help="Bootstrap resamples"),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Score and decide, but change no stage"),
    as_json: bool = JsonOpt,
) -> None:
    """Score candidates, the champion and the teacher on the eval split; promote or keep the champion."""
    if reference not in REFERENCES:
        fail(as_json, f"--reference must be one of {', '.join(REFERENCES)}, got {reference!r}", code=2)
    cli = state(ctx)
    with guarded(as_json):
        try:
            report = _run_evaluation(
                cli, workload, model, hardware, usd_per_hour, reference, resamples, seed, dry_run
            )
        except ConfigError:
            raise  # guarded() reports it with exit code 2
        except ModuleNotFoundError as exc:
            fail(as_json, f"evaluation needs a stage that is not installed: {exc}")
        except (RegistryError, ValueError) as exc:
            fail(as_json, str(exc))
    payload = report.as_dict()
    emit(as_json, payload, lambda: _render_evaluation(payload))
    warn_all([warning for m in payload["models"] for warning in m.get("cost_warnings", [])])


def _run_evaluation(
    cli: CliState,
    workload_id: str,
    model_ids: list[str] | None,
    hardware: str,
    usd_per_hour: float | None,
    reference: str,
    resamples: int,
    seed: int,
    dry_run: bool,
) -> Any:
    from flywheel.loop import Loop, evaluate_stage

    config = cli.require_config()
    config.workload(workload_id)
    loop = Loop(config, cli.home, cli.warehouse(), cli.prices())
    with progress_bar("evaluating") as advance:
        return evaluate_stage(
            loop,
            workload_id,
            model_ids,
            hardware=hardware,
            usd_per_hour=usd_per_hour,
            reference=reference,
            resamples=resamples,
            seed=seed,
            dry_run=dry_run,
            progress=advance,
            skip_when_empty=False,
            rejudge_last=True,
        )


def _render_evaluation(payload: dict[str, Any]) -> None:
    title = f"evaluation {payload['run_id']} (reference {payload['reference']}, n={payload['n_examples']})"
    table = Table(title=title)
    for column in ("model", payload["primary_metric"], "95% CI", "format", "latency ms", "tok/s", "$/1k"):
        table.add_column(column)
    validity = {
        (r["model"]): r["value"]
        for r in payload["results"]
        if r["metric"] == "format_validity" and r["value"] is not None
    }
    for m in payload["models"]:
        table.add_row(
            m["model"],
            _num(m["value"]),
            f"{_num(m['ci_low'])} - {_num(m['ci_high'])}",
            _num(validity.get(m["model"])),
            f"{m['latency_ms_mean']:.1f}",
            _num(m["tokens_per_second"], 0),
            "-" if m["cost_per_1k"] is None else f"{m['cost_per_1k']:.3g}",
        )
    if payload.get("rejudged_run"):
        out.print(
            f"no new candidate: the models of the last evaluation ({payload['rejudged_run']}) scored again, "
            "nothing changed",
            highlight=False,
        )
    out.print(table)
    for check in payload["checks"]:
        mark = "[green]pass[/]" if check["passed"] else f"[red]{check['code']}[/]"
        out.print(f"  {check['model']}: {check['check']}: {mark}  {check['detail']}", highlight=False)
    target = payload.get("target") or {}
    out.print(f"target: {target.get('text', '-')}", highlight=False)
    colour = DECISION_COLOURS.get(payload["decision"], "yellow")
    champion = payload["champion"] or "none (teacher serves)"
    out.print(
        f"[bold {colour}]{payload['decision']}[/]: champion {champion}; "
        f"reasons: {', '.join(payload['reasons'])}"
        + (" (dry run: nothing changed)" if not payload["applied"] else ""),
        highlight=False,
    )
    if payload.get("eval_rows_needed"):
        out.print(
            f"the eval split ({payload['n_examples']} rows) is too small to tell: about "
            f"{payload['eval_rows_needed']} eval rows would resolve the margin (curate more traffic)",
            highlight=False,
        )
    need = payload.get("data_need")
    if need:
        out.print(f"data need: {_need_text(need)}", highlight=False)
    _render_cascades(payload)
    for model, metrics in (payload.get("tool_metrics") or {}).items():
        _render_tool_metrics(model, metrics)


def _render_cascades(payload: dict[str, Any]) -> None:
    """Each candidate's calibrated cascade: the share it can answer while the mix meets the target."""
    for cascade in payload.get("cascades") or []:
        only = ", tool-call turns only" if cascade.get("claims") == "tool_calls" else ""
        if cascade.get("threshold") is None:
            text = "no confidence threshold brings the mix to the target"
        else:
            text = (
                f"answers {cascade['coverage']:.1%} at confidence >= {cascade['threshold']:.4f}{only}; "
                f"mix {_num(cascade['value'])} (CI low {_num(cascade['ci_low'])})"
            )
        out.print(f"cascade {cascade['model']}: {text}", highlight=False)


def _render_tool_metrics(model: str, metrics: dict[str, Any]) -> None:
    overall = metrics.get("overall") or {}
    table = Table(
        title=f"{model}: per tool (decision accuracy {_num(overall.get('decision_accuracy'))}, "
        f"function name {_num(overall.get('name_accuracy'))}, coverage {_num(overall.get('coverage'))})"
    )
    for column in ("tool", "parameter", "n", "name", "args exact", "exact", "F1", "coverage"):
        table.add_column(column)
    for tool, row in (metrics.get("tools") or {}).items():
        table.add_row(
            tool, "", str(row.get("n", "-")), _num(row.get("name_accuracy")),
            _num(row.get("arguments_exact")), "", "", _num(row.get("coverage")),
        )  # fmt: skip
        for name, param in (row.get("parameters") or {}).items():
            table.add_row("", name, str(param.get("n", "-")), "", "", _num(param.get("exact")),
                          _num(param.get("f1")), "")  # fmt: skip
    out.print(table)


def _need_text(need: dict[str, Any]) -> str:
    curve = ", ".join(f"{n}: {score:.3f}" for n, score in need.get("curve", []))
    if need.get("status") == "estimated":
        head = f"about {need['records_needed']} training records to reach {need['target']:.3f}"
    elif need.get("status") == "not_reachable":
        head = f"target {need['target']:.3f} not reachable with this student"
    else:
        head = need.get("note") or "no estimate"
    rare = need.get("rare_slices") or []
    return f"{head} (curve {curve})" + (f"; {len(rare)} rare slice(s)" if rare else "")


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@app.command()
def models(
    ctx: typer.Context,
    workload: str | None = typer.Option(None, "--workload", "-w", help="Only this workload"),
    stage: str | None = typer.Option(None, "--stage", help="candidate | champion | retired"),
    as_json: bool = JsonOpt,
) -> None:
    """List registered models with their stage, lineage and latest evaluation."""
    with guarded(as_json):
        try:
            records = _registry(state(ctx)).list_models(workload, stage)
        except RegistryError as exc:
            fail(as_json, str(exc), code=2)
    rows = [_model_row(r) for r in records]
    emit(as_json, {"models": rows}, lambda: _render_models(rows))


def _model_row(record: ModelRecord) -> dict[str, Any]:
    row = record.as_dict()
    evaluation = (record.metrics or {}).get("evaluation") if isinstance(record.metrics, dict) else None
    row["evaluation"] = evaluation
    return row


def _render_models(rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print("no models yet: train candidates first")
        return
    table = Table(title="models")
    for column in ("model", "stage", "kind", "params", "snapshot", "created", "eval run", "gate"):
        table.add_column(column)
    for row in rows:
        evaluation = row["evaluation"] or {}
        table.add_row(
            row["model_id"],
            row["stage"],
            row["kind"],
            f"{row['params']:,}" if row["params"] else "-",
            row["snapshot_id"] or "-",
            str(row["created_at"])[:19],
            evaluation.get("run_id", "-"),
            ", ".join(evaluation.get("gate", [])) or "-",
        )
    out.print(table)


@app.command()
def promote(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="The model to make its workload's champion"),
    reason: str = typer.Option(..., "--reason", help="Why (stored with the promotion)"),
    as_json: bool = JsonOpt,
) -> None:
    """Make a model its workload's champion by hand (the previous champion is retired)."""
    registry = _registry(state(ctx))
    with guarded(as_json):
        try:
            promotion = registry.promote(model_id, reason, action="manual")
        except RegistryError as exc:
            fail(as_json, str(exc))
    _emit_promotion(as_json, registry, promotion)


@app.command()
def rollback(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id"),
    reason: str = typer.Option("manual rollback", "--reason", help="Why (stored with the rollback)"),
    to: str | None = typer.Option(
        None, "--to", help="'teacher' (no student: every call goes to the teacher) or a model id"
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Restore the workload's previous champion (or `--to teacher`, or `--to MODEL_ID`)."""
    registry = _registry(state(ctx))
    with guarded(as_json):
        try:
            promotion = registry.rollback(workload, reason, to=to)
        except RegistryError as exc:
            fail(as_json, str(exc))
    _emit_promotion(as_json, registry, promotion)


def _emit_promotion(as_json: bool, registry: Registry, promotion: Any) -> None:
    payload = {
        "action": promotion.action,
        "workload": promotion.workload_id,
        "champion": promotion.model_id,
        "previous_champion": promotion.previous_model_id,
        "reason": promotion.reason,
        "promotion_id": promotion.promotion_id,
        "at": promotion.at,
        "manifest": str(registry.manifest_path),
    }
    emit(
        as_json,
        payload,
        lambda: out.print(
            f"{promotion.workload_id}: champion is now {promotion.model_id} "
            f"(was {promotion.previous_model_id or 'none'}); manifest {registry.manifest_path}",
            highlight=False,
        ),
    )
    if not as_json:
        err.print(f"reason: {promotion.reason}", highlight=False)
