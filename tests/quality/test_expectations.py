from flywheel.config import WorkloadConfig
from flywheel.quality.expectations import quality_frame, run_suite
from flywheel.quality.pii import DEFAULT_PATTERNS
from flywheel.quality.rows import CurationRow, prepare_rows

ROUTER = WorkloadConfig(id="r", task="classification", labels=["billing", "refund"])


def row(
    i: int, content: str | None, *, status: str = "ok", finish: str = "stop", tokens: int | None = 10
) -> CurationRow:
    response = {"error": {"code": "timeout"}} if status != "ok" else {
        "message": {"role": "assistant", "content": content}, "finish_reason": finish}  # fmt: skip
    return CurationRow(
        interaction_id=f"id{i}", client_id="c", source_ref=f"f:{i}", batch_id="b1", status=status, ts=None,
        request={"messages": [{"role": "user", "content": f"ticket {i}"}]}, response=response, feedback=None,
        metadata={}, prompt_tokens=tokens, completion_tokens=tokens,
    )  # fmt: skip


def test_suite_counts_unexpected_rows_per_expectation() -> None:
    rows = [row(i, "billing") for i in range(20)]
    rows += [
        row(20, "tech"),
        row(21, None, status="error"),
        row(22, "bil", finish="length"),
        row(23, "refund", tokens=0),
    ]
    prepare_rows(rows, ROUTER, None, DEFAULT_PATTERNS)
    frame = quality_frame(rows, ROUTER)
    assert frame.height == 24 and frame["label"].to_list()[20] == "tech"
    results = run_suite(ROUTER, {"b1": rows})
    by_key = {(r.expectation, r.column): r for r in results}
    status = by_key[("expect_column_values_to_be_in_set", "status")]
    assert (status.success, status.unexpected_count, status.element_count) == (False, 1, 24)
    assert by_key[("expect_column_values_to_not_be_in_set", "finish_reason")].unexpected_count == 1
    labels = next(r for r in results if r.column == "label" and r.expectation.endswith("in_set"))
    assert labels.unexpected_count == 2  # "tech" and "bil"
    assert by_key[("expect_column_values_to_be_between", "prompt_tokens")].unexpected_count == 1
    assert by_key[("expect_column_values_to_be_unique", "interaction_id")].success is True
    assert all(r.batch_id == "b1" and r.suite == "r.interactions" for r in results)
