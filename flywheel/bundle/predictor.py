"""One predictor from a model bundle, shared by evaluate, recipe scoring and serve.

`BundlePredictor.predict` takes examples that carry the raw request as the application sent it
(`Example.request`), turns each into the student's input with the bundle's template and PII
scrubbing (as curation prepared its training inputs), runs the student, puts the request's own values
back where the answer holds placeholders, then reads the student's canonical answer with the
contract, renders it in the teacher's format and validates the rendered answer against the request.
A prediction that must not be served (unreadable, outside the label set, against the schema) carries
`invalid_reason`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from flywheel.answers import read_message
from flywheel.bundle.spec import BUNDLE_FILE, Bundle, read_bundle
from flywheel.quality.pii import Scrubber, build_patterns, restore, scrub_message
from flywheel.records import Example, Prediction, Predictor

log = logging.getLogger("flywheel.bundle")
StudentLoader = Callable[[Path], Predictor]


class BundlePredictor:
    """A student plus its bundle: raw requests in, answers in the teacher's format out."""

    def __init__(self, bundle: Bundle, student: Predictor, name: str | None = None) -> None:
        self.bundle = bundle
        self.student = student
        self.name = name or student.name
        pii = bundle.pii
        self._patterns = build_patterns(pii.get("types") or (), pii.get("patterns")) if pii else ()

    def predict(self, examples: list[Example]) -> list[Prediction]:
        prepared = [self._student_input(e) for e in examples]
        predictions = self.student.predict([student for student, _ in prepared])
        if len(predictions) != len(examples):
            raise ValueError(f"student {self.name!r} returned {len(predictions)} answers for {len(examples)}")
        return [
            self.finish(_restored(p, values), e)
            for p, e, (_, values) in zip(predictions, examples, prepared, strict=True)
        ]

    def _student_input(self, example: Example) -> tuple[Example, dict[str, str]]:
        """The student's input, and placeholder -> value for the PII scrubbed out of a raw request."""
        student = self.bundle.student_input(example)
        if example.request is None or not self._patterns:
            return student, {}
        scrubber = Scrubber(self._patterns)
        student.messages = [scrub_message(m, scrubber) for m in student.messages]
        return student, scrubber.originals

    def finish(self, prediction: Prediction, example: Example) -> Prediction:
        """The student's canonical answer rendered as the teacher would write it, and validated."""
        request = example.request or {"tools": example.tools, "response_format": example.response_format}
        spec = self.bundle.answer
        canonical = read_message(spec.canonical(), prediction.message, request)
        if canonical.value is None or canonical.reason is not None:
            return replace(prediction, invalid_reason=canonical.reason or "unreadable")
        message = self.bundle.format.render(spec, prediction.message, canonical.value)
        if message.get("tool_calls") and example.request is not None and not request.get("tools"):
            return replace(prediction, message=message, invalid_reason="tools_not_offered")
        checked = read_message(spec, message, request)
        return replace(prediction, message=message, invalid_reason=checked.reason)

    def __getattr__(self, attr: str) -> Any:  # the student's own attributes (manifest, task, ...)
        return getattr(self.student, attr)


def _restored(prediction: Prediction, originals: dict[str, str]) -> Prediction:
    """The prediction with the request's own values where it copied their placeholders."""
    if not originals:
        return prediction
    message = dict(prediction.message)
    if isinstance(message.get("content"), str):
        message["content"] = restore(message["content"], originals)
    if message.get("tool_calls"):
        message["tool_calls"] = [_restored_call(call, originals) for call in message["tool_calls"]]
    return replace(prediction, message=message)


def _restored_call(call: dict[str, Any], originals: dict[str, str]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        function["arguments"] = restore(arguments, originals)
    elif isinstance(arguments, dict):
        text = orjson.dumps(arguments).decode()
        function["arguments"] = orjson.loads(restore(text, originals))
    return {**call, "function": function}


def load_predictor(
    path: str | Path,
    loader: StudentLoader | None = None,
    default: Bundle | None = None,
    **kwargs: Any,
) -> BundlePredictor:
    """The bundle predictor of a model directory (`loader` loads the student; default load_student).

    default: the bundle to use when the directory has none (see `read_bundle`)."""
    from flywheel.train.student import load_student, read_manifest

    path = Path(path)
    student = loader(path) if loader is not None else load_student(path, **kwargs)
    manifest = getattr(student, "manifest", None)
    if not isinstance(manifest, dict):
        try:
            manifest = read_manifest(path)
        except FileNotFoundError:
            manifest = None
    if not (path / BUNDLE_FILE).exists():
        log.warning("%s has no %s: served without prompt pruning or answer rendering", path, BUNDLE_FILE)
    return BundlePredictor(read_bundle(path, manifest, default), student)
