"""The Great Expectations suite of a workload, run on every new ingest batch.

GE 1.24 validates pandas here (not Polars, and not DuckDB through SQLAlchemy), so each batch becomes
a Polars frame of per-interaction quality columns, converted with `.to_pandas()`. The suite checks
the columns' schema, non-null ids, status ok, finish_reason != length, token bounds, and the answer
format of the task: label in the label set, JSON answer matches the schema, tool-call names exist in
the request's tools and arguments parse. Results are aggregate (unexpected count per expectation);
the per-row verdicts come from `checks.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from flywheel.config import WorkloadConfig
from flywheel.quality.answers import schema_for, tool_schemas
from flywheel.quality.rows import CurationRow, input_tokens

QUALITY_SCHEMA = {
    "interaction_id": pl.String,
    "status": pl.String,
    "finish_reason": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "input_tokens": pl.Int64,
    "n_messages": pl.Int64,
    "answer": pl.String,
    "label": pl.String,
    "answer_json": pl.String,
    "answer_schema_valid": pl.Boolean,
    "tool_name": pl.String,
    "tool_arguments": pl.String,
    "tool_names_known": pl.Boolean,
}


@dataclass(slots=True)
class ExpectationResult:
    suite: str
    expectation: str
    column: str | None
    success: bool | None
    unexpected_count: int | None
    element_count: int | None
    batch_id: str


def quality_frame(rows: list[CurationRow], workload: WorkloadConfig) -> pl.DataFrame:
    """One row of quality columns per interaction."""
    records = []
    for row in rows:
        message = row.response.get("message") if isinstance(row.response.get("message"), dict) else {}
        content = message.get("content")
        calls = message.get("tool_calls") or []
        names = [(c.get("function") or {}).get("name") for c in calls]
        known = set(tool_schemas(workload, row.request)) if calls else set()
        parsed = row.parsed
        records.append(
            {
                "interaction_id": row.interaction_id,
                "status": row.status,
                "finish_reason": row.response.get("finish_reason"),
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "input_tokens": input_tokens(row),
                "n_messages": len(row.request.get("messages") or []),
                "answer": content if isinstance(content, str) else None,
                "label": parsed.label if parsed and workload.task == "classification" else None,
                "answer_json": parsed.answer_json if parsed else None,
                "answer_schema_valid": _schema_valid(parsed),
                "tool_name": names[0] if names else None,
                "tool_arguments": (calls[0].get("function") or {}).get("arguments") if calls else None,
                "tool_names_known": all(n in known for n in names) if calls else None,
            }
        )
    return pl.DataFrame(records, schema=QUALITY_SCHEMA)


def _schema_valid(parsed: Any) -> bool | None:
    if parsed is None or parsed.answer_json is None:
        return None
    return parsed.reason != "schema_violation"


def suite_spec(
    workload: WorkloadConfig, rows: list[CurationRow], request: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(GE expectation class name, kwargs) of the workload's suite; `request` (else the first row's)
    is where a per-request JSON schema is looked up."""
    config = workload.curation
    spec: list[tuple[str, dict[str, Any]]] = [
        ("ExpectTableColumnsToMatchSet", {"column_set": list(QUALITY_SCHEMA), "exact_match": False}),
        ("ExpectColumnValuesToNotBeNull", {"column": "interaction_id"}),
        ("ExpectColumnValuesToBeUnique", {"column": "interaction_id"}),
        ("ExpectColumnValuesToBeBetween", {"column": "n_messages", "min_value": 1}),
        ("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": ["ok"]}),
        (
            "ExpectColumnValuesToNotBeInSet",
            {"column": "finish_reason", "value_set": ["length", "content_filter"]},
        ),
        (
            "ExpectColumnValuesToBeBetween",
            {"column": "prompt_tokens", "min_value": 1, "max_value": config.max_prompt_tokens},
        ),
        (
            "ExpectColumnValuesToBeBetween",
            {"column": "completion_tokens", "min_value": 1, "max_value": config.max_output_tokens},
        ),
        (
            "ExpectColumnValuesToBeBetween",
            {
                "column": "input_tokens",
                "min_value": config.min_input_tokens,
                "max_value": config.max_input_tokens,
            },
        ),
    ]
    if request is None:
        request = rows[0].request if rows else {}
    return spec + _task_spec(workload, request)


def _task_spec(workload: WorkloadConfig, request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if workload.task == "classification":
        spec = [("ExpectColumnValuesToNotBeNull", {"column": "label"})]
        if workload.labels:
            spec.append(
                ("ExpectColumnValuesToBeInSet", {"column": "label", "value_set": list(workload.labels)})
            )
        return spec
    if workload.task == "extraction":
        spec = [("ExpectColumnValuesToBeJsonParseable", {"column": "answer"})]
        if schema_for(workload, request) is not None:
            # GE's ExpectColumnValuesToMatchJsonSchema builds a validator per value (~8 ms a row); the
            # validator compiled once in answers.py fills this column instead.
            spec.append(
                ("ExpectColumnValuesToBeInSet", {"column": "answer_schema_valid", "value_set": [True]})
            )
        return spec
    if workload.task == "tool_call":
        spec = [
            ("ExpectColumnValuesToBeInSet", {"column": "tool_names_known", "value_set": [True]}),
            ("ExpectColumnValuesToBeJsonParseable", {"column": "tool_arguments"}),
        ]
        if workload.tools:
            names = sorted(tool_schemas(workload, {}))
            spec.append(("ExpectColumnValuesToBeInSet", {"column": "tool_name", "value_set": names}))
        return spec
    return [("ExpectColumnValuesToNotBeNull", {"column": "answer"})]


def run_suite(
    workload: WorkloadConfig,
    batches: Mapping[str, list[CurationRow] | pl.DataFrame],
    requests: Mapping[str, dict[str, Any]] | None = None,
) -> list[ExpectationResult]:
    """Validate each batch (its rows, or their `quality_frame`) with the workload's suite; one result
    per expectation and batch. `requests`: the first request of each batch given as a frame (where
    `suite_spec` looks up a per-request JSON schema)."""
    if not batches:
        return []
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = _ephemeral_context(gx)
    suite_name = f"{workload.id}.interactions"
    asset = context.data_sources.add_pandas("flywheel").add_dataframe_asset("interactions")
    batch_definition = asset.add_batch_definition_whole_dataframe("batch")
    results: list[ExpectationResult] = []
    for batch_id, rows in sorted(batches.items()):
        suite = gx.ExpectationSuite(name=f"{suite_name}.{len(results)}")
        members = rows if isinstance(rows, list) else []
        for class_name, kwargs in suite_spec(workload, members, (requests or {}).get(batch_id)):
            suite.add_expectation(getattr(gxe, class_name)(**kwargs))
        suite = context.suites.add(suite)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate.{len(results)}", data=batch_definition, suite=suite)
        )
        frame = (rows if isinstance(rows, pl.DataFrame) else quality_frame(rows, workload)).to_pandas()
        outcome = validation.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        results.extend(_results(suite_name, batch_id, outcome))
    return results


def _results(suite_name: str, batch_id: str, outcome: Any) -> list[ExpectationResult]:
    out = []
    for result in outcome.results:
        config = result.expectation_config
        raised = _raised(result.exception_info)
        summary = result.result or {}
        out.append(
            ExpectationResult(
                suite=suite_name,
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=None if raised else bool(result.success),
                unexpected_count=summary.get("unexpected_count"),
                element_count=summary.get("element_count"),
                batch_id=batch_id,
            )
        )
    return out


def _raised(info: Any) -> bool:
    """GE reports exceptions flat or keyed by metric id, depending on where they happened."""
    if not isinstance(info, dict):
        return False
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _ephemeral_context(gx: Any) -> Any:
    """An in-memory context: no files written, no usage statistics, no progress bars."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")
