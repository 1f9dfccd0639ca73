import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from tests.conftest import chat_record, write_jsonl

runner = CliRunner()


def _json(args: list[str]) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return result.exit_code, json.loads(lines[0])


def test_ingest_then_stats_json_contract(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [chat_record(i) for i in range(5)] + [b"{oops"])
    home = str(tmp_path / "home")
    code, payload = _json(["--home", home, "ingest", str(path), "--workload", "support"])
    assert code == 0
    assert {k: payload[k] for k in ("read", "ingested", "duplicates", "quarantined")} == {
        "read": 6,
        "ingested": 5,
        "duplicates": 0,
        "quarantined": 1,
    }
    code, payload = _json(["--home", home, "stats"])
    assert code == 0
    support = payload["workloads"]["support"]
    assert support["interactions"] == 5
    assert support["quarantine_reasons"] == {"truncated_json": 1}
    assert support["cost_usd"] > 0


def test_nothing_readable_exits_nonzero_with_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path), "ingest", str(tmp_path / "nope.jsonl"), "-w", "x"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nope.jsonl" in result.output


def test_partly_bad_file_exits_zero_and_names_each_bad_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [chat_record(1), b"\xff garbage", b'{"request": 3}'])
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "ingest", str(path), "-w", "x", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["quarantined"] == 2
    assert f"{path}:2: invalid_utf8" in result.stderr
    assert f"{path}:3: bad_request" in result.stderr
    assert "Traceback" not in result.output


def test_bad_config_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "flywheel.yaml"
    config.write_text("workloads:\n  - id: a\n    task: nope\n")
    code, payload = _json(["--config", str(config), "--home", str(tmp_path), "ingest"])
    assert code == 2
    assert "flywheel.yaml:3: workloads[0].task" in payload["error"]


def test_init_writes_a_config_that_loads_and_refuses_to_clobber(tmp_path: Path) -> None:
    target = tmp_path / "flywheel.yaml"
    code, payload = _json(["init", str(target)])
    assert code == 0 and target.exists()
    code, payload = _json(["init", str(target)])
    assert code == 1 and "--force" in payload["error"]


def test_ingest_from_config_sources(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "a.jsonl", [chat_record(i) for i in range(3)])
    write_jsonl(logs / "b.jsonl", [chat_record(i) for i in range(2, 6)])
    config = tmp_path / "flywheel.yaml"
    config.write_text("workloads:\n  - id: chatty\n    task: chat\n    sources: [{path: logs}]\n")
    code, payload = _json(["--config", str(config), "--home", str(tmp_path / "h"), "ingest"])
    assert code == 0
    assert (payload["read"], payload["ingested"], payload["duplicates"]) == (7, 6, 1)


def test_run_names_an_unknown_workload(tmp_path: Path) -> None:
    config = tmp_path / "flywheel.yaml"
    config.write_text("workloads: [{id: a, task: chat}]\n")
    code, payload = _json(["--config", str(config), "--home", str(tmp_path), "run", "-w", "b"])
    assert code == 2
    assert "unknown workload 'b'" in payload["error"] and "configured: a" in payload["error"]


def test_the_ingest_progress_bar_runs_no_thread_so_workers_can_fork(monkeypatch) -> None:
    import importlib
    import threading

    cli_app = importlib.import_module("flywheel.cli.app")  # the package's `app` is the Typer object

    monkeypatch.setattr(type(cli_app.err), "is_terminal", property(lambda self: True))
    before = threading.active_count()
    with cli_app.progress_bar("ingesting", refresh_thread=False) as advance:
        advance(10)
        assert threading.active_count() == before
    with cli_app.progress_bar("labeling") as advance:  # the others keep rich's refresh thread
        assert threading.active_count() == before + 1


def test_curate_that_keeps_nothing_exits_1_with_the_top_reason(tmp_path: Path) -> None:
    error = {"error": {"message": "rate limited", "code": 429}}
    path = write_jsonl(tmp_path / "a.jsonl", [chat_record(i, response=error) for i in range(3)])
    config = tmp_path / "flywheel.yaml"
    config.write_text("workloads: [{id: a, task: chat, curation: {expectations: false, export: []}}]\n")
    base = ["--config", str(config), "--home", str(tmp_path / "h")]
    assert runner.invoke(app, [*base, "ingest", str(path), "-w", "a"]).exit_code == 0
    code, payload = _json([*base, "curate", "-w", "a"])
    assert code == 1 and payload["top_reason"] == "error_response"
    assert "kept 0 of 3 rows; top rejection reason: error_response (3 rows)" in payload["error"]
    assert payload["curation"]["snapshot_id"] is None and payload["curation"]["out"] == 0
    shown = runner.invoke(app, [*base, "curate", "-w", "a"])
    assert shown.exit_code == 1 and "Traceback" not in shown.output
    assert "error_response" in shown.output
    code, listed = _json([*base, "quality", "-w", "a", "--rejected", "error_response"])
    assert code == 0 and listed["count"] == 3


def test_run_table_shows_the_gate_target_and_rows_needed(capsys) -> None:
    from flywheel.cli.run import _render, _short

    target = "agreement with the teacher (accuracy) CI low >= 0.900 (reference: teacher)"
    turn = {
        "decision": "insufficient_eval",
        "reasons": ["insufficient_eval", "agreement_below_target"],
        "metric": "accuracy",
        "eval_rows_needed": 240,
        "target": target,
    }
    _render({"seconds": 1.0, "workloads": {"support": _short(turn)}})
    text = " ".join(capsys.readouterr().out.split())
    assert "support: insufficient_eval (insufficient_eval, agreement_below_target); gate target" in text
    assert "gate target agreement with the teacher (accuracy) CI low >= 0.900" in text
    assert "about 240 eval rows would resolve it" in text


def test_tables_print_bracketed_labels_as_written_at_80_columns() -> None:
    from rich.console import Console

    from flywheel.cli.app import Table

    labels = [f"[[[[analyst rating {i}]]]]" for i in range(14)]
    table = Table(title="labels [[[[x]]]]")
    table.add_column("label")
    table.add_column("n")
    for i, label in enumerate(labels):
        table.add_row(label, str(i))
    console = Console(record=True, width=80)
    console.print(table)
    text = console.export_text()
    assert all(label in text for label in labels) and "labels [[[[x]]]]" in text


def test_tables_wrap_instead_of_cutting_at_80_columns() -> None:
    from rich.console import Console

    from flywheel.cli.app import Table

    table = Table(title="flywheel")
    for column in ("workload", "in", "curated", "decision", "metric", "student (95% CI)", "teacher", "saved"):
        table.add_column(column)
    table.add_row(
        "tool-assistant",
        "1,613",
        "968",
        "insufficient_eval",
        "tool_call_exact",
        "0.983 (0.966-0.996)",
        "0.958 (0.930-0.980)",
        "12%",
    )
    console = Console(record=True, width=80)
    console.print(table)
    text = console.export_text()
    assert "…" not in text
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    columns = ["".join(row[i].strip() for row in rows) for i in range(len(rows[0]))]
    assert columns[0] == "tool-assistant" and columns[3] == "insufficient_eval"
    assert columns[4] == "tool_call_exact" and columns[5] == "0.983(0.966-0.996)"


@pytest.mark.parametrize(
    "command",
    [["evaluate", "-w", "w"], ["train", "-w", "w"], ["costs"], ["quality", "-w", "w"], ["label", "-w", "w"],
     ["curate", "-w", "w"], ["models"], ["stats"]],
)  # fmt: skip
def test_an_empty_home_gets_one_clear_line_never_a_traceback(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "flywheel.yaml"
    config.write_text("workloads:\n  - id: w\n    task: chat\n")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "empty"), "--config", str(config), *command])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) <= 2
