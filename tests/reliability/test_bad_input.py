"""Bad input end to end: the config loader and `flywheel ingest` on whatever a file may hold.

Properties (hypothesis, seeded by the profile): load_config returns a config or raises ConfigError
naming the file, nothing else; `flywheel ingest --json` exits 0 or 1 with one JSON object and no
traceback, and every input line is ingested, a duplicate or quarantined, as the warehouse confirms.
The connectors' own properties (one item per unit) are in tests/connectors/test_properties.py.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import ConfigError, FlywheelConfig, load_config
from flywheel.store.db import Warehouse
from tests.connectors.test_properties import json_values, lines_of, nvidia_docs, openai_docs, spool_docs

EXAMPLES = int(os.environ.get("PROP_EXAMPLES", "40"))
# derandomize: the same examples on every run (seeded from the test), so a failure reproduces
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
TEMPLATE = Path(__file__).parents[2] / "flywheel" / "templates" / "flywheel.yaml"
runner = CliRunner()

# Fragments that have broken YAML loaders: deep nesting, alias bombs and cycles, 5,000-digit ints,
# control characters, tags that construct objects, documents and keys in odd places.
NASTY = [
    "[" * 3000,
    "{a: " * 2000,
    "&a [*a]",
    "a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b]\n",
    "9" * 5000,
    "\x00",
    "\x07",
    "!!python/object/apply:os.system [ls]",
    "---\n",
    "? [1, 2]\n: x\n",
    "*undefined",
    "\t",
    ": :",
    "'unterminated",
    "x" * 200_000,
    "- ../../etc\n",
    "name: ../../outside\n",
    "id: 'a/../../b'\n",
]


# Seven levels of nine aliases each: 9**7 = 4.8 million values from a 300-byte file.
ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 7)
)


def check_config(path: Path) -> FlywheelConfig | None:
    """The property: a config or one ConfigError naming the file; quickly."""
    started = time.monotonic()
    try:
        return load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), str(exc)[:200]
        return None
    finally:
        assert time.monotonic() - started < 10


def mutate_text(text: str, draw: st.DrawFn) -> str:
    cut = draw(st.integers(0, len(text)))
    fragment = draw(st.sampled_from(NASTY) | st.text(max_size=30))
    how = draw(st.sampled_from(["truncate", "insert", "replace"]))
    if how == "truncate":
        return text[:cut]
    if how == "insert":
        return text[:cut] + fragment + text[cut:]
    return text[:cut] + fragment + text[cut + draw(st.integers(0, 40)) :]


def mutate_tree(value: Any, draw: st.DrawFn) -> Any:
    """Replace one value anywhere in the parsed template with a random one (wrong types)."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: mutate_tree(value[key], draw)}
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], mutate_tree(value[index], draw), *value[index + 1 :]]
    return draw(json_values | st.sampled_from([10**30, -1, 0, "", [], {}, "../../x"]))


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    template = TEMPLATE.read_text()
    kind = draw(st.sampled_from(["bytes", "text", "tree"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "text":
        return mutate_text(template, draw).encode("utf-8", "surrogatepass")
    tree = mutate_tree(yaml.safe_load(template), draw)
    return yaml.safe_dump(tree, allow_unicode=True).encode()


def test_config_loader_only_ever_raises_config_error(tmp_path: Path, figures: dict) -> None:
    outcomes = {"loaded": 0, "refused": 0}

    @SETTINGS
    @given(data=config_files())
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as name:
            path = Path(name) / "flywheel.yaml"
            path.write_bytes(data)
            outcomes["loaded" if check_config(path) else "refused"] += 1

    check()
    assert outcomes["refused"] > 0 and sum(outcomes.values()) >= EXAMPLES
    figures.update(cases=sum(outcomes.values()), **outcomes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workloads: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("teacher: {concurrency: " + "9" * 5000 + "}", "invalid YAML value"),
        (ALIAS_BOMB, "aliases expand"),
        ("workloads: &a [*a]\n", "aliases expand"),
        ("workloads: [{id: a, task: chat, students: [{name: ../../x}]}]\n", "used in paths"),
        ("workloads: [{id: a, task: chat, students: [{name: a/b}]}]\n", "used in paths"),
        ("workloads: [{id: a, task: chat, students: [{name: ..}]}]\n", "used in paths"),
    ],
)
def test_config_inputs_that_used_to_escape_as_tracebacks(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "flywheel.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_odd_config_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (17 * 1024 * 1024))
    cases = {big: "over 16 MiB", tmp_path: "cannot read", tmp_path / "nope.yaml": "not found"}
    for path, expected in cases.items():
        with pytest.raises(ConfigError, match=expected):
            load_config(path)
    result = runner.invoke(app, ["--config", str(big), "stats"])
    assert result.exit_code == 2 and "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


FORMATS = {"openai": openai_docs, "nvidia": nvidia_docs, "spool": spool_docs}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_cli_ingest_accounts_for_every_line(fmt: str, tmp_path: Path, figures: dict) -> None:
    tried = {"files": 0, "lines": 0}

    home = tmp_path / "home"  # one warehouse for all examples: migrating a fresh one costs ~0.5 s

    @settings(SETTINGS, max_examples=max(8, EXAMPLES // 4))
    @given(lines=lines_of(FORMATS[fmt]()), gz=st.booleans())
    def check(lines: list[bytes], gz: bool) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as name:
            data = b"\n".join(lines) + b"\n"
            path = Path(name) / ("logs.jsonl.gz" if gz else "logs.jsonl")
            path.write_bytes(gzip.compress(data) if gz else b"\n" + data)  # "\n": never gzip magic
            before = stored_counts(home / "warehouse.duckdb")
            report = ingest_cli(home, path, fmt)
            assert_accounted(report, data, before, stored_counts(home / "warehouse.duckdb"))
            tried["files"] += 1
            tried["lines"] += report["read"]

    check()
    figures.update(cases=tried["lines"], files=tried["files"], records_lost=0)


@pytest.mark.parametrize("fmt", ["openai", "nvidia"])
def test_non_string_model_is_ingested_or_quarantined(tmp_path: Path, fmt: str) -> None:
    good = {"role": "assistant", "content": "x"}
    lines = [
        {
            "request": {"model": [["x"]], "messages": [{"role": "user", "content": "a"}]},
            "response": {"choices": [{"message": good}]},
        },
        {
            "request": {"model": {"a": 1}, "messages": [{"role": "user", "content": "b"}]},
            "response": {"choices": [{"message": good}], "model": 7},
        },
    ]
    data = (
        b"\n".join(
            orjson.dumps({"timestamp": 1_715_000_000, "workload_id": "w", "client_id": "c", **doc})
            for doc in lines
        )
        + b"\n"
    )
    path = tmp_path / "logs.jsonl"
    path.write_bytes(data)
    report = ingest_cli(tmp_path / "home", path, fmt)
    assert_accounted(report, data, (0, 0), stored_counts(tmp_path / "home" / "warehouse.duckdb"))


def ingest_cli(home: Path, path: Path, fmt: str) -> dict:
    result = runner.invoke(app, ["--home", str(home), "ingest", str(path), "-w", "w", "-f", fmt, "--json"])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout  # exactly one JSON object on stdout
    return json.loads(lines[0])


def stored_counts(path: Path) -> tuple[int, int]:
    if not path.exists():
        return 0, 0
    return Warehouse(path).read(
        lambda con: (
            con.execute("SELECT count(*) FROM interactions").fetchone()[0],
            con.execute("SELECT count(*) FROM quarantine").fetchone()[0],
        )
    )


def assert_accounted(report: dict, data: bytes, before: tuple[int, int], after: tuple[int, int]) -> None:
    non_blank = sum(1 for line in data.split(b"\n") if line.strip())
    assert report["read"] == non_blank
    assert report["read"] == report["ingested"] + report["duplicates"] + report["quarantined"]
    # the warehouse agrees with the report: new rows are exactly what it says it ingested/quarantined
    assert (after[0] - before[0], after[1] - before[1]) == (report["ingested"], report["quarantined"])


def test_price_lookup_of_a_model_that_is_not_a_name() -> None:
    """Logs put anything in "model"; pricing used it as a dict key (TypeError: unhashable 'list')."""
    from flywheel.pricing import PriceCatalog

    catalog = PriceCatalog.load()
    assert catalog.cost("gpt-4o-mini", 10, 1) is not None
    for model in ([["x"]], {"a": 1}, 7, 1.5, True, ""):
        assert catalog.cost(model, 10, 1) is None  # type: ignore[arg-type]
