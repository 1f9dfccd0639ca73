"""The chat metric's LLM-judge score from the teacher's judge mode, as a runner `Judge` callable, and
the rule that decides when a chat workload is gated on it."""

from __future__ import annotations

from typing import Any

from flywheel.config import TeacherConfig, WorkloadConfig
from flywheel.evaluate.runner import Judge

JUDGE_METRIC = "judge_agreement"


def teacher_judge(client: Any, *, scale: tuple[float, float] = (1, 10), **kwargs: Any) -> Judge:
    """A Judge that asks the teacher (a flywheel.teacher TeacherClient) to score each answer against
    its reference; scores are rescaled from `scale` to [0, 1], None where the judge gave none.
    `kwargs` go to `flywheel.teacher.judge.judge_many` (warehouse, prices, max_usd, workload_id...).

    An answer identical to its reference (the replayed teacher, a student that copies it) is 1.0 and
    an empty one 0.0 without a call: the judge's budget goes to the answers it can tell apart."""
    low, high = scale

    def score(candidates: list[str], references: list[str]) -> list[float | None]:
        from flywheel.teacher.judge import judge_many

        out: list[float | None] = [_settled(c, r) for c, r in zip(candidates, references, strict=True)]
        ask = [i for i, value in enumerate(out) if value is None]
        if ask:
            pairs = [(candidates[i], references[i]) for i in ask]
            results = judge_many(pairs, client=client, scale=scale, **kwargs)
            for i, result in zip(ask, results, strict=True):
                out[i] = None if result is None else (result.score - low) / (high - low)
        return out

    return score


def _settled(candidate: str, reference: str) -> float | None:
    if not candidate.strip():
        return 0.0
    return 1.0 if " ".join(candidate.split()) == " ".join(reference.split()) else None


def judge_enabled(workload: WorkloadConfig, teacher: TeacherConfig) -> bool:
    """Chat workloads are judged when `gate.judge` says so, by default when the teacher is live."""
    if workload.task != "chat":
        return False
    if workload.gate.judge is None:
        return teacher.base_url is not None
    if workload.gate.judge and teacher.base_url is None:
        raise ValueError(f"workload {workload.id!r}: gate.judge is true but the teacher has no base_url")
    return workload.gate.judge


def chat_judge(
    workload: WorkloadConfig, teacher: TeacherConfig, warehouse: Any, prices: Any
) -> tuple[Judge | None, WorkloadConfig, Any]:
    """(judge, workload, client): for a chat workload with a live teacher (gate.judge), the teacher
    judges each answer under the labeling budget (teacher.max_usd), cached in the warehouse's teacher
    cache, and the gate reads judge_agreement; otherwise (None, workload, None): semantic_agreement.
    The caller closes the client."""
    if not judge_enabled(workload, teacher):
        return None, workload, None
    from flywheel.teacher import make_client

    client = make_client(teacher)
    judge = teacher_judge(
        client, warehouse=warehouse, prices=prices, max_usd=teacher.max_usd, workload_id=workload.id
    )
    return judge, judged_workload(workload), client


def judged_workload(workload: WorkloadConfig) -> WorkloadConfig:
    """The workload gated on judge_agreement, unless flywheel.yaml names another primary metric."""
    if workload.gate.primary_metric is not None:
        return workload
    gate = workload.gate.model_copy(update={"primary_metric": JUDGE_METRIC})
    return workload.model_copy(update={"gate": gate})
