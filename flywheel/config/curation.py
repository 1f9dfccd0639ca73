"""Curation settings of one workload (`workloads[].curation` in flywheel.yaml).

Part of the config package, which imports no stage package (no import cycles). Every
field has a default: `curation: {}` means "the defaults", and unknown keys are errors like everywhere
else in the config.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_REFUSAL_PATTERNS = (
    r"^\W*(?:i'?m|i am|we'?re|we are)?\s*(?:so\s+)?sorry\b.{0,60}?\b(?:can(?:'|no)?t|cannot|unable to|"
    r"not able to|won'?t be able to)\b.{0,30}?\b(?:help|assist|comply|provide|do that|support)",
    r"^\W*i (?:can(?:'|no)?t|cannot|am unable to|won'?t) (?:help|assist|comply) with (?:that|this)",
    r"\bas an ai(?: language model)?\b",
)
PII_TYPES = ("email", "phone", "card", "iban", "national_id", "ip")
FEEDBACK_ROOTS = ("feedback", "metadata", "request", "response")


class FeedbackConfig(BaseModel):
    """Where the logs keep an outcome signal, what counts as negative, and what curation does then.

    `field` is a dotted path into the interaction: `feedback` (the logged feedback itself),
    `feedback.score`, `metadata.reward`, `request.metadata.thumbs`... With neither `negative_below`
    nor `negative_values`, the value is read like logged feedback (thumbs down, false, a negative
    number, "bad"...). A row without the field has no feedback and is kept.
    """

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Dotted path of the signal, e.g. metadata.reward")
    negative_below: float | None = Field(
        None, description="A number (or numeric text) below this is negative"
    )
    negative_values: list[str | bool | int | float] = Field(
        default_factory=list, description="Values that mean negative (text compared case-insensitively)"
    )
    action: Literal["exclude", "downweight"] = Field("exclude", description="What a negative outcome gets")
    weight: float = Field(0.25, ge=0, lt=1, description="Training weight of a downweighted example")

    @field_validator("field")
    @classmethod
    def _known_root(cls, value: str) -> str:
        parts = value.split(".")
        if parts[0] not in FEEDBACK_ROOTS or not all(parts):
            raise ValueError(
                f"{value!r} must be a dotted path starting with one of {', '.join(FEEDBACK_ROOTS)}"
            )
        return value


class CurationConfig(BaseModel):
    """What curation keeps, how it de-duplicates, de-biases and splits, and what it exports."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(13, description="Seed for every sampled choice (splits, caps, clusters)")
    # Row checks
    reject_negative_feedback: bool = Field(True, description="Default rule on the logged feedback")
    feedback: FeedbackConfig | None = Field(None, description="Read feedback from a log field instead")
    shadow_labels: bool = Field(
        True,
        description="A student-served call the teacher also answered (a serve shadow call) is a training "
        "row with the teacher's answer; false: only logged teacher answers and fallbacks are labels",
    )
    refusal_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_REFUSAL_PATTERNS))
    min_input_tokens: int = Field(1, ge=0, description="Estimated tokens of the variable input")
    max_input_tokens: int = Field(8192, ge=1)
    max_output_tokens: int = Field(4096, ge=1)
    max_prompt_tokens: int = Field(128_000, ge=1, description="Logged prompt_tokens bound (GE suite)")
    expectations: bool = Field(True, description="Run the Great Expectations suite on new batches")
    # PII
    pii_types: list[str] = Field(default_factory=lambda: list(PII_TYPES))
    pii_patterns: dict[str, str] = Field(default_factory=dict, description="Extra type -> regex")
    # Dedup
    dedup: bool = True
    near_dup_threshold: float = Field(0.7, gt=0, le=1, description="Jaccard of character shingles")
    near_dup_common_share: float | None = Field(
        0.9, gt=0, le=1, description="Tokens in this share of texts are template: ignored by near-dup"
    )
    shingle_size: int = Field(3, ge=2, le=20)
    num_perm: int = Field(128, ge=16, le=1024)
    # De-bias
    max_slice_share: float | None = Field(0.3, gt=0, le=1)
    cap_below_production_share: bool = Field(
        False,
        description="Let slice caps cut a slice below its share of the traffic (reported as a warning)",
    )
    max_per_slice: int | None = Field(None, ge=1)
    max_client_share: float | None = Field(0.4, gt=0, le=1)
    min_slice_count: int = Field(20, ge=0, description="Slices below this are flagged rare")
    topic_clusters: int | None = Field(None, ge=2, le=200, description="None = chosen from size")
    # Prompt pruning
    prune_prompts: bool = True
    min_template_coverage: float = Field(0.6, gt=0, le=1)
    min_static_tokens: int = Field(16, ge=1)
    # Splits and export
    val_fraction: float = Field(0.1, ge=0, lt=1)
    eval_fraction: float = Field(0.1, ge=0, lt=1)
    max_eval_examples: int | None = Field(2000, ge=1)
    export: list[Literal["parquet", "hf"]] = Field(default_factory=lambda: ["parquet", "hf"])

    @field_validator("pii_types")
    @classmethod
    def _known_pii_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown PII types {unknown} (known: {', '.join(PII_TYPES)})")
        return value

    @field_validator("pii_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
                raise ValueError(f"PII type name {name!r} must be lower-case letters, digits, '_'")
            _compile(pattern, f"pii_patterns.{name}")
        return value

    @field_validator("refusal_patterns")
    @classmethod
    def _refusals_compile(cls, value: list[str]) -> list[str]:
        for index, pattern in enumerate(value):
            _compile(pattern, f"refusal_patterns[{index}]")
        return value

    @model_validator(mode="after")
    def _splits_leave_room_for_train(self) -> CurationConfig:
        if self.val_fraction + self.eval_fraction >= 0.9:
            raise ValueError("val_fraction + eval_fraction must leave at least 10% for train")
        return self


def _compile(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: invalid regular expression: {exc}") from exc
