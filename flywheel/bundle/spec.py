"""The model bundle: what a trained student's directory holds besides its weights, in `bundle.json`.

Everything needed to go from a raw logged request to the student's input, and from the student's
output to the answer the teacher would have given:
- `template`: the static prompt prefix curation found and pruned from training inputs (removed from
  a raw request the same way before the student reads it);
- `input`: the truncation side and maximum length the student was trained with;
- `pii`: the PII types and patterns curation scrubbed from its training inputs: a served request is
  scrubbed the same way before the student reads it, and the placeholders in its answer are put
  back to the request's own values (a student trained on `<EMAIL_1>` copies `<EMAIL_1>`);
- `answer`: the answer contract (task, labels, label parser, JSON schema, tools) a served answer is
  validated against;
- `format`: how the teacher wrote its answers (a label's wrapping and spelling, JSON fences and
  indentation), so the served answer is what the application already parses;
- `request_models`: the `model` names the workload's logged requests used, so an application that
  only switches its base_url reaches this workload.
Training writes it into every saved model directory; evaluate, recipe scoring and serve all load it
with `flywheel.bundle.load_predictor`, so the student they run is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from flywheel.answers import AnswerFormat, AnswerSpec, learn_format
from flywheel.quality.pruning import apply_template
from flywheel.records import Example, message_text

BUNDLE_FILE = "bundle.json"
BUNDLE_VERSION = 1


@dataclass(frozen=True)
class Bundle:
    workload_id: str
    answer: AnswerSpec
    format: AnswerFormat = field(default_factory=AnswerFormat)
    template: dict[str, Any] | None = None  # {"template_id", "messages", "text_prefix"}
    request_models: tuple[str, ...] = ()
    input: dict[str, Any] = field(default_factory=dict)  # {"truncation_side", "max_length"}
    pii: dict[str, Any] | None = None  # {"types": [...], "patterns": {type: regex}}

    @property
    def task(self) -> str:
        return self.answer.task

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": BUNDLE_VERSION,
            "workload_id": self.workload_id,
            "answer": self.answer.as_dict(),
            "format": self.format.as_dict(),
            "template": self.template,
            "request_models": list(self.request_models),
            "input": self.input,
            "pii": self.pii,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bundle:
        version = data.get("version")
        if version != BUNDLE_VERSION:
            raise ValueError(f"bundle version {version!r} is not {BUNDLE_VERSION}; retrain the model")
        return cls(
            workload_id=str(data["workload_id"]),
            answer=AnswerSpec.from_dict(data["answer"]),
            format=AnswerFormat.from_dict(data.get("format")),
            template=data.get("template"),
            request_models=tuple(data.get("request_models") or ()),
            input=dict(data.get("input") or {}),
            pii=data.get("pii"),
        )

    def student_input(self, example: Example) -> Example:
        """What the student reads: a raw request without the static prefix it never learnt.

        An example without a raw request is already in training form (a curated snapshot row)."""
        request = example.request
        if request is None:
            return example
        return Example(
            example_id=example.example_id,
            workload_id=example.workload_id,
            messages=apply_template(request.get("messages") or [], self.template),
            target={},
            slice=example.slice,
            tools=request.get("tools"),
            response_format=request.get("response_format"),
            interaction_id=example.interaction_id,
        )

    def matches_template(self, request: dict[str, Any]) -> bool:
        """Does the request start with this workload's static prompt prefix?"""
        if not self.template or not self.template.get("messages"):
            return False
        messages = request.get("messages") or []
        return apply_template(messages, self.template) != list(messages)


def default_bundle(workload: Any) -> Bundle:
    """The bundle of a student that came without one: the workload's contract, nothing learned."""
    return Bundle(workload_id=workload.id, answer=AnswerSpec.of(workload))


def build_bundle(
    workload: Any,
    train: list[Example],
    *,
    template: dict[str, Any] | None = None,
    request_models: tuple[str, ...] = (),
    input_settings: dict[str, Any] | None = None,
) -> Bundle:
    """The bundle of a student trained on `train` for `workload` (a WorkloadConfig)."""
    spec = AnswerSpec.of(workload)
    answers = [(message_text(e.target), e.label) for e in train if e.target and not e.synthetic]
    curation = workload.curation
    return Bundle(
        workload_id=workload.id,
        answer=spec,
        format=learn_format(spec, answers),
        template=template,
        request_models=tuple(sorted(set(request_models))),
        input=dict(input_settings or {}),
        pii={"types": list(curation.pii_types), "patterns": dict(curation.pii_patterns)},
    )


def write_bundle(directory: Path, bundle: Bundle, input_settings: dict[str, Any] | None = None) -> None:
    data = bundle.as_dict()
    if input_settings:
        data["input"] = {**data["input"], **input_settings}
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    (Path(directory) / BUNDLE_FILE).write_bytes(payload + b"\n")


def read_bundle(
    directory: Path, manifest: dict[str, Any] | None = None, default: Bundle | None = None
) -> Bundle:
    """The bundle of a model directory. A directory without one (trained before bundles existed, or
    a custom student) gets `default` (the served workload's contract), else the contract its manifest
    records (task, labels); either way no template or format: it is served as it was trained."""
    path = Path(directory) / BUNDLE_FILE
    if path.exists():
        try:
            return Bundle.from_dict(orjson.loads(path.read_bytes()))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid model bundle ({exc})") from exc
    if default is not None:
        return default
    if manifest is None or "task" not in manifest:
        raise FileNotFoundError(f"{directory}: no {BUNDLE_FILE} and no task in its manifest")
    labels = manifest.get("labels")
    spec = AnswerSpec(task=manifest["task"], labels=tuple(labels) if labels else None)
    return Bundle(workload_id=str(manifest.get("workload_id") or ""), answer=spec)
