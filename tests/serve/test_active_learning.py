"""Active learning on served traffic: the teacher's fallback answers re-enter training through the
spool (provenance `fallback`), unsure answers are shadowed first, and served calls are ranked (negative
feedback, disagreement, fallback, unsure) with the expected gain of labeling them first."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

from flywheel import loop as stages
from flywheel.active import expected_gain, prioritize, served_priorities
from flywheel.train.data import load_training_data
from tests.serve.conftest import ScriptedStudent
from tests.serve.test_close_the_wheel import send, write_config


def unsure_student() -> ScriptedStudent:
    """Right ('refund', like the teacher) and sure on usual tickets; on 'hard' ones under the 0.5
    threshold (the teacher takes over; the student would have said 'billing'); on 'edge' ones just
    over it (served, and wrong)."""

    def answer(text: str) -> tuple[str, float]:
        if "hard" in text:
            return "billing", 0.3
        if "edge" in text:
            return "billing", 0.55
        return "refund", 0.95

    return ScriptedStudent(answer)


async def serve(harness, kinds, feedback) -> list[str]:
    harness.app.state.serving.router._rng = random.Random(3)  # a fixed shadow draw
    async with harness.running(), harness.http() as http:
        return await send(harness, http, kinds, feedback)


def test_fallbacks_reenter_training_and_served_calls_are_ranked(make_harness) -> None:
    harness = make_harness({"support": unsure_student()}, serve={"shadow_rate": 0.25})
    config = write_config(harness.home, auto_rollback=False)
    kinds = [("usual", 40), ("hard", 12), ("edge", 8)]
    ids = asyncio.run(serve(harness, kinds, [{"request_id": 0, "score": "down"}]))
    lines = {line["id"]: line for line in harness.spool_lines()}
    edge = [lines[i] for i in ids[52:]]
    usual = [lines[i] for i in ids[:40]]
    # unsure answers are shadowed at min(1, 0.25 x 4): every one; sure ones at about a quarter
    assert all(line["teacher_response"] is not None for line in edge)
    assert 3 <= sum(line["teacher_response"] is not None for line in usual) <= 20

    loop = stages.Loop.open(config, harness.home)
    stages.ingest_stage(loop, "support")
    provenance = dict(
        loop.warehouse.read(
            lambda con: con.execute(
                "SELECT metadata->>'provenance', count(*) FROM interactions GROUP BY ALL"
            ).fetchall()
        )
    )
    assert provenance == {"student": 48, "fallback": 12}

    # the teacher's fallback answers are labels: curated into the snapshot, replayed into training
    stages.curate_stage(loop, "support")
    stages.label_stage(loop, "support")
    rows = loop.warehouse.read(
        lambda con: con.execute(
            "SELECT id FROM interactions WHERE metadata->>'provenance' = 'fallback'"
        ).fetchall()
    )
    fallback_ids = {row[0] for row in rows}
    by_spool_id = dict(
        loop.warehouse.read(
            lambda con: con.execute(
                "SELECT metadata->>'spool_id', id FROM interactions "
                "WHERE (metadata->'teacher_response') IS NOT NULL"
            ).fetchall()
        )
    )
    data = load_training_data(loop.warehouse, "support")
    trained = {e.interaction_id: e for e in [*data.train, *data.val]}
    # student answers are never labels; the teacher's are, from a fallback or from a shadow call
    assert trained and set(trained) <= fallback_ids | set(by_spool_id.values())
    edge_ids = {by_spool_id[line["id"]] for line in edge}
    assert edge_ids & set(trained)  # where the student was wrong, the teacher's answer is learned
    assert {e.target["content"] for e in trained.values()} == {"refund"}  # the teacher's answer

    priorities = served_priorities(loop.warehouse, loop.workload("support"), threshold=0.5)
    top = [p.top_reason for p in priorities]
    assert top[:1] == ["negative_feedback"]
    assert top[1:9] == ["disagreed"] * 8  # the edge calls: shadowed, the teacher said otherwise
    assert top[9:21] == ["fallback"] * 12 and all(p.student_wrong for p in priorities[9:21])
    assert set(top[21:]) == {None}
    gain = expected_gain(priorities)
    assert gain["flagged"] == 21 and gain["served"] == 60
    assert gain["by_reason"]["unsure"] == 8 and gain["by_top_reason"]["disagreed"] == 8
    # 20 known errors (8 edge + 12 hard); the sure calls' shadows agree, so the flagged 35% of
    # calls hold every estimated error but the thumbs-down's share of the usual group's rate (0)
    assert gain["estimated_errors"] == 20.0 and gain["share_of_errors_covered"] == 1.0
    assert gain["uniform_share"] == 0.35 and gain["gain_vs_uniform"] == 2.86

    # relabel's order: the served-hard examples first, then the rest as they came
    others = [replace(e, interaction_id=f"other-{i}") for i, e in enumerate(data.train[:3])]
    ordered = prioritize([*others, *trained.values()], priorities)
    flagged = {p.interaction_id for p in priorities if p.score > 0} & set(trained)
    assert flagged and {e.interaction_id for e in ordered[: len(flagged)]} == flagged
    rest = [e.interaction_id for e in ordered[len(flagged) :]]
    assert rest[:3] == [e.interaction_id for e in others]  # unflagged ones keep the order they came in
