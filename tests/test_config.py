from pathlib import Path

import pytest

from flywheel.config import ConfigError, load_config
from flywheel.demo import demo_config_path

TEMPLATE = Path(__file__).parents[1] / "flywheel" / "templates" / "flywheel.yaml"


def test_starter_template_loads() -> None:
    config = load_config(TEMPLATE)
    workload = config.workload("support-routing")
    assert workload.task == "classification"
    assert workload.labels and "billing" in workload.labels
    assert config.teacher.api_key_env == "OPENAI_API_KEY"


def test_demo_config_loads() -> None:
    config = load_config(demo_config_path())
    assert {w.task for w in config.workloads} >= {"classification", "extraction", "tool_call"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flywheel.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "workloads:\n  - id: a\n    task: chat\n    lables: [x]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}:4" in message
    assert "workloads[0].lables" in message
    assert "Extra inputs are not permitted" in message


def test_bad_enum_value_is_explained(tmp_path: Path) -> None:
    path = _write(tmp_path, "workloads:\n  - id: a\n    task: summarise\n")
    with pytest.raises(ConfigError, match=r":3: workloads\[0\]\.task: Input should be"):
        load_config(path)


def test_classification_labels_may_be_left_to_inference_but_not_empty(tmp_path: Path) -> None:
    path = _write(tmp_path, "workloads:\n  - id: a\n    task: classification\n")
    assert load_config(path).workload("a").labels is None  # curation proposes them from the answers
    path = _write(tmp_path, "workloads:\n  - id: a\n    task: classification\n    labels: []\n")
    with pytest.raises(ConfigError, match=r":2: workloads\[0\]: .*`labels` is empty"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workloads: [{id: a, task: chat}, {id: a, task: chat}]\n", "appears twice"),
        ("workloads: [{id: '../etc', task: chat}]\n", "used in paths"),
        ("workloads: [{id: a, task: chat, label_parser: {regex: '(['}}]\n", "invalid regular expression"),
        ("teacher: {concurrency: 0}\n", "teacher.concurrency"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("workloads: [\n", "invalid YAML"),
    ],
)
def test_bad_configs_say_why(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("(", r"\(")):
        load_config(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_workload_lists_known(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "workloads: [{id: a, task: chat}]\n"))
    with pytest.raises(ConfigError, match="configured: a"):
        config.workload("b")


def test_source_formats_are_the_connector_registry(tmp_path: Path) -> None:
    from connectors import REGISTRY
    from connectors.base import source_formats

    assert source_formats() == ["auto", *sorted(REGISTRY)]
    sources = "".join(f"\n      - {{path: x.jsonl, format: {name}}}" for name in source_formats())
    path = tmp_path / "ok.yaml"
    path.write_text(f"workloads:\n  - id: w\n    task: chat\n    sources:{sources}\n")
    assert [s.format for s in load_config(path).workload("w").sources] == source_formats()
    bad = "\n      - {path: x.xml, format: xml}"
    path.write_text(f"workloads:\n  - id: w\n    task: chat\n    sources:{bad}\n")
    with pytest.raises(ConfigError, match=r"unknown format 'xml' \(known: auto, csv, langfuse"):
        load_config(path)


def _yaml_keys(node: object, prefix: str = "") -> set[str]:
    if isinstance(node, list):
        return set().union(*(_yaml_keys(item, f"{prefix}[]") for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    keys: set[str] = set()
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        keys.add(path)
        if not path.endswith(("json_schema", "tools", "prices", "mapping.columns")):  # free-form data
            keys |= _yaml_keys(value, path)
    return keys


def test_config_reference_lists_every_key_the_demo_config_uses() -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from flywheel.cli import app

    result = CliRunner().invoke(app, ["config", "reference", "--json"])
    assert result.exit_code == 0, result.output
    documented = {row["key"]: row for row in json.loads(result.stdout)["keys"]}
    used = _yaml_keys(yaml.safe_load(demo_config_path().read_text()))
    assert used and not used - set(documented), sorted(used - set(documented))
    assert documented["workloads[].gate.min_agreement"]["default"] == "0.9"
    assert documented["workloads[].students[].options.fit_budget_s"]["type"] == "float"
    kinds = {row["kind"]: row for row in json.loads(result.stdout)["student_kinds"]}
    assert {"scratch", "causal-lm", "encoder-classifier", "encoder-extractor", "schema-tool"} <= set(kinds)
    assert kinds["schema-tool"]["tasks"] == "tool_call"
    text = CliRunner().invoke(app, ["config", "reference"]).stdout
    assert text.startswith("| key | type | default | description |")
    assert "| `schema-tool` | tool_call |" in text
