"""One predictor from a model bundle, shared by evaluate, recipe scoring and serve.

`BundlePredictor.predict` takes examples that carry the raw request as the application sent it
(`Example.request`), turns each into the student's input with the bundle's template, runs the
student, then reads the student's canonical answer with the contract, renders it in the teacher's
format and validates the rendered answer against the request. A prediction that must not be served
(unreadable, outside the label set, against the schema) carries `invalid_reason`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from flywheel.answers import read_message
from flywheel.bundle.spec import BUNDLE_FILE, Bundle, read_bundle
from flywheel.records import Example, Prediction, Predictor

log = logging.getLogger("flywheel.bundle")
StudentLoader = Callable[[Path], Predictor]


class BundlePredictor:
    """A student plus its bundle: raw requests in, answers in the teacher's format out."""

    def __init__(self, bundle: Bundle, student: Predictor, name: str | None = None) -> None:
        self.bundle = bundle
        self.student = student
        self.name = name or student.name

    def predict(self, examples: list[Example]) -> list[Prediction]:
        inputs = [self.bundle.student_input(e) for e in examples]
        predictions = self.student.predict(inputs)
        if len(predictions) != len(examples):
            raise ValueError(f"student {self.name!r} returned {len(predictions)} answers for {len(examples)}")
        return [self.finish(p, e) for p, e in zip(predictions, examples, strict=True)]

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
