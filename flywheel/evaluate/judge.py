"""The chat metric's LLM-judge score from the teacher's judge mode, as a runner `Judge` callable."""

from __future__ import annotations

from typing import Any

from flywheel.evaluate.runner import Judge


def teacher_judge(client: Any, *, scale: tuple[float, float] = (1, 10), **kwargs: Any) -> Judge:
    """A Judge that asks the teacher (a flywheel.teacher TeacherClient) to score each answer against
    its reference; scores are rescaled from `scale` to [0, 1], None where the judge gave none.
    `kwargs` go to `flywheel.teacher.judge.judge_many` (warehouse, prices, max_usd, workload_id...)."""
    low, high = scale

    def score(candidates: list[str], references: list[str]) -> list[float | None]:
        from flywheel.teacher.judge import judge_many

        pairs = list(zip(candidates, references, strict=True))
        results = judge_many(pairs, client=client, scale=scale, **kwargs)
        return [None if r is None else (r.score - low) / (high - low) for r in results]

    return score
