"""The answer contract's renderer and the model bundle, without training anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.answers import AnswerFormat, AnswerSpec, ParserSpec, learn_format, read_message
from flywheel.bundle import Bundle, BundlePredictor, build_bundle, read_bundle, write_bundle
from flywheel.config import WorkloadConfig
from flywheel.config.serve import ServeConfig
from flywheel.records import Example, Prediction
from flywheel.serve.resolve import resolve_workload
from flywheel.serve.responses import ApiError
from flywheel.serve.settings import build_settings

LABELS = ("analyst rating", "upgrade", "downgrade")
WRAPPED = AnswerSpec("classification", LABELS, ParserSpec(regex=r"\[\[\[\[(.+?)\]\]\]\]", lowercase=True))
SYSTEM = {"role": "system", "content": "Rate the headline."}
FEW_SHOT = "Examples:\nCitigroup Downgrades X => [[[[Downgrade]]]]\nNow the headline:\n"


def msg(content: str | None) -> dict:
    return {"role": "assistant", "content": content}


def test_wrapping_and_spelling_are_learned_and_read_back() -> None:
    logged = [("[[[[Analyst Rating]]]]", "analyst rating"), ("[[[[Upgrade]]]]", "upgrade")] * 5
    fmt = learn_format(WRAPPED, [*logged, ("[[[[Downgrade]]]]", "downgrade")])
    assert (fmt.prefix, fmt.suffix) == ("[[[[", "]]]]")
    assert fmt.render(WRAPPED, msg("upgrade"), "upgrade")["content"] == "[[[[Upgrade]]]]"
    for label in LABELS:
        rendered = fmt.render(WRAPPED, msg(label), label)
        assert read_message(WRAPPED, rendered, None).value == label


def test_a_wrapping_the_parser_cannot_read_is_not_used() -> None:
    bare = AnswerSpec("classification", LABELS, ParserSpec(regex=r"^\s*([a-z ]+)\s*$"))
    fmt = learn_format(bare, [("Label: upgrade", "upgrade")] * 3)
    assert fmt.render(bare, msg("upgrade"), "upgrade")["content"] == "upgrade"


@given(st.lists(st.sampled_from(LABELS), min_size=1, max_size=20), st.sampled_from(["", "Answer: ", "<<"]))
def test_rendered_labels_always_parse_back(labels: list[str], prefix: str) -> None:
    spec = AnswerSpec("classification", LABELS)
    fmt = learn_format(spec, [(f"{prefix}{label.title()}", label) for label in labels])
    for label in LABELS:
        assert read_message(spec, fmt.render(spec, msg(label), label), None).value == label


def test_extraction_json_style_is_learned() -> None:
    spec = AnswerSpec("extraction")
    fenced = '```json\n{\n  "a": 1\n}\n```'
    fmt = learn_format(spec, [(fenced, '{"a":1}')] * 3)
    assert fmt == AnswerFormat(fence="json", indent=2)
    rendered = fmt.render(spec, msg('{"b":2,"a":1}'), '{"a":1,"b":2}')["content"]
    assert rendered.startswith('```json\n{\n  "b": 2') and read_message(spec, msg(rendered), None).valid


def workload() -> WorkloadConfig:
    return WorkloadConfig(
        id="ratings",
        task="classification",
        labels=list(LABELS),
        label_parser={"regex": r"\[\[\[\[(.+?)\]\]\]\]", "lowercase": True},
    )


class Echo:
    """A student that answers the last word of the last user message, with a fixed confidence."""

    name = "echo"

    def __init__(self) -> None:
        self.seen: list[Example] = []

    def predict(self, examples: list[Example]) -> list[Prediction]:
        self.seen.extend(examples)
        return [Prediction(msg(e.messages[-1]["content"].split(":")[-1].strip()), 0.9) for e in examples]


def test_bundle_round_trip_prunes_the_raw_request_and_renders(tmp_path: Path) -> None:
    train = [
        Example("1", "ratings", [], msg("[[[[Upgrade]]]]"), label="upgrade"),
        Example("2", "ratings", [], msg("[[[[Analyst Rating]]]]"), label="analyst rating"),
    ]
    template = {"template_id": "tpl-1", "messages": [SYSTEM], "text_prefix": FEW_SHOT}
    bundle = build_bundle(workload(), train, template=template, request_models=("gpt-4o", "gpt-4o"))
    write_bundle(tmp_path, bundle, {"truncation_side": "left", "max_length": 64})
    loaded = read_bundle(tmp_path)
    assert loaded.request_models == ("gpt-4o",) and loaded.input["truncation_side"] == "left"
    student = Echo()
    predictor = BundlePredictor(loaded, student)
    request = {"model": "gpt-4o", "messages": [SYSTEM, {"role": "user", "content": FEW_SHOT + "x: upgrade"}]}
    (answer,) = predictor.predict([Example("r", "ratings", request["messages"], {}, request=request)])
    assert student.seen[0].messages == [{"role": "user", "content": "x: upgrade"}]
    assert answer.message["content"] == "[[[[Upgrade]]]]" and answer.invalid_reason is None
    (bad,) = predictor.predict([Example("r", "ratings", [], {}, request={**request, "messages": [
        SYSTEM, {"role": "user", "content": FEW_SHOT + "x: sideways"}]})])  # fmt: skip
    assert bad.invalid_reason == "label_not_in_set"


def test_a_directory_without_a_bundle_gets_the_default_or_its_manifest(tmp_path: Path) -> None:
    default = Bundle("ratings", AnswerSpec.of(workload()))
    assert read_bundle(tmp_path, None, default) is default
    from_manifest = read_bundle(tmp_path, {"task": "classification", "labels": ["a"]})
    assert from_manifest.answer.labels == ("a",)
    with pytest.raises(FileNotFoundError):
        read_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="retrain"):
        read_bundle(tmp_path)


def test_routing_by_workload_alias_learned_name_and_template() -> None:
    from flywheel.config import FlywheelConfig

    config = FlywheelConfig(
        workloads=[workload(), {"id": "chat", "task": "chat"}, {"id": "other", "task": "chat"}]
    )
    settings = build_settings(config, serve=ServeConfig(aliases={"rater": "ratings"}), environ={})
    template = {"messages": [SYSTEM], "text_prefix": None}
    bundles = {
        "ratings": Bundle(
            "ratings", AnswerSpec.of(workload()), template=template, request_models=("gpt-4o",)
        ),
        "chat": Bundle("chat", AnswerSpec("chat"), request_models=("gpt-4o", "gpt-4o-mini")),
        "other": Bundle("other", AnswerSpec("chat"), request_models=("llama",)),
    }
    user = {"role": "user", "content": "hi"}

    def route(model: str, messages: list | None = None) -> str:
        return resolve_workload(settings, bundles, {"model": model, "messages": messages or [user]})

    assert route("chat") == "chat" and route("rater") == "ratings" and route("gpt-4o-mini") == "chat"
    assert route("gpt-4o", [SYSTEM, user]) == "ratings"  # two workloads logged gpt-4o: the template tells
    assert route("unknown-model", [SYSTEM, user]) == "ratings"  # no name match: the template alone
    with pytest.raises(ApiError, match="several workloads") as ambiguous:
        route("gpt-4o")
    assert ambiguous.value.status == 404
    with pytest.raises(ApiError, match="llama"):
        route("gpt-9")


def test_pii_is_scrubbed_for_the_student_and_restored_in_its_answer() -> None:
    class CopyEmail:
        name = "copy"

        def __init__(self) -> None:
            self.seen: list[str] = []

        def predict(self, examples: list[Example]) -> list[Prediction]:
            texts = [e.messages[-1]["content"] for e in examples]
            self.seen.extend(texts)
            return [Prediction(msg(json.dumps({"email": t.split()[-1]})), 0.9) for t in texts]

    extraction = WorkloadConfig(id="orders", task="extraction")
    bundle = build_bundle(extraction, [])
    student = CopyEmail()
    request = {"messages": [{"role": "user", "content": "mail me at ana.lopez@example.org"}]}
    (answer,) = BundlePredictor(bundle, student).predict([Example("r", "orders", [], {}, request=request)])
    assert student.seen == ["mail me at <EMAIL_1>"]  # what the student was trained on
    assert json.loads(answer.message["content"]) == {"email": "ana.lopez@example.org"}
