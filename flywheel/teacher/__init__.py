"""The teacher: any OpenAI-compatible endpoint that labels, relabels, synthesizes and judges.

Entry points: `make_client`, `label_examples` / `alabel_examples` (replay | relabel | synthesize),
`synthesize_for_slices`, `judge` / `judge_many`, `latest_labels`, `TeacherPredictor`.
"""

from flywheel.teacher.budget import Budget, BudgetExhausted
from flywheel.teacher.cache import cache_key
from flywheel.teacher.client import Completion, TeacherCallError, TeacherClient, make_client
from flywheel.teacher.judge import DEFAULT_RUBRIC, JudgeScore, ajudge, ajudge_many, judge, judge_many
from flywheel.teacher.labeling import (
    MODES,
    alabel_examples,
    asynthesize_for_slices,
    label_examples,
    synthesize_for_slices,
)
from flywheel.teacher.labels import Label, latest_labels
from flywheel.teacher.predictor import TeacherPredictor
from flywheel.teacher.runs import LabelReport
from flywheel.teacher.structured import InvalidAnswer

__all__ = [
    "DEFAULT_RUBRIC",
    "MODES",
    "Budget",
    "BudgetExhausted",
    "Completion",
    "InvalidAnswer",
    "JudgeScore",
    "Label",
    "LabelReport",
    "TeacherCallError",
    "TeacherClient",
    "TeacherPredictor",
    "ajudge",
    "ajudge_many",
    "alabel_examples",
    "asynthesize_for_slices",
    "cache_key",
    "judge",
    "judge_many",
    "label_examples",
    "latest_labels",
    "make_client",
    "synthesize_for_slices",
]
