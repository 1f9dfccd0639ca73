"""kill -9 of a labeling process at seeded random points, three times, then a clean re-run.

Paid answers are journaled the moment they arrive, so the only calls a kill makes us pay for twice
are the ones in flight at that instant (at most `concurrency` per kill): the teacher charged for
them but the answer never reached the dead process. The test counts them at the fake teacher.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import orjson

from flywheel.store.db import Warehouse
from flywheel.teacher import label_examples
from flywheel.testing.oracles import keyword_oracle
from tests.reliability.helpers import spawn_python
from tests.teacher.conftest import PRICES, support_examples, support_workload, teacher

SEED = 2222
EXAMPLES = 80
CONCURRENCY = 4

LABEL_CHILD = """
import sys
from flywheel.config import TeacherConfig
from flywheel.store.db import Warehouse
from flywheel.teacher import label_examples, make_client
from tests.teacher.conftest import PRICES, support_examples, support_workload

def main():
    config = TeacherConfig(base_url=sys.argv[2], model="fake-teacher", concurrency=int(sys.argv[4]))
    with make_client(config, {"OPENAI_API_KEY": "k"}) as client:
        label_examples(support_examples(int(sys.argv[3])), support_workload(), "relabel", client=client,
                       warehouse=Warehouse(sys.argv[1]), prices=PRICES,
                       progress=lambda n: print("labeled", n, flush=True))
    print("done", flush=True)

if __name__ == "__main__":
    main()
"""


def rows(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.read(lambda con: con.execute(sql).fetchall())


def test_killed_labeling_never_loses_a_paid_answer(tmp_path: Path, figures: dict) -> None:
    warehouse = Warehouse(tmp_path / "home" / "warehouse.duckdb")
    rng = random.Random(SEED)
    kills, points = 0, []
    with teacher(keyword_oracle, app_options={"latency_s": 0.03}, concurrency=CONCURRENCY) as (client, app):
        args = (str(warehouse.path), client.config.base_url, str(EXAMPLES), str(CONCURRENCY))
        for attempt in range(3):
            child = spawn_python(LABEL_CHILD, tmp_path, f"label-{attempt}", *args)
            wanted = rng.randint(1, EXAMPLES - 10)
            if child.wait_for("labeled", wanted, timeout_s=120):
                time.sleep(rng.uniform(0.0, 0.03))  # mid-call: requests are in flight
                kills += child.kill9()
                points.append(wanted)
            else:
                child.finish(30)
        rerun = label_examples(
            support_examples(EXAMPLES),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
        bodies = [orjson.dumps(request["messages"]) for request in app.state.requests]
    paid_per_request = Counter(bodies)
    repeated = sum(n - 1 for n in paid_per_request.values())
    assert kills == 3, points
    assert rerun.labeled == EXAMPLES and rerun.failed == 0
    assert len(paid_per_request) == EXAMPLES  # every example was asked for (at least) once
    assert repeated <= kills * CONCURRENCY, f"{repeated} answers paid twice after {kills} kills"
    cache = rows(warehouse, "SELECT count(*), sum(cost_usd) FROM teacher_cache")[0]
    ledger = rows(warehouse, "SELECT count(*), count(DISTINCT ref), sum(usd) FROM cost_ledger")[0]
    assert cache[0] == EXAMPLES and ledger[:2] == (EXAMPLES, EXAMPLES)  # each answer booked once
    assert abs(ledger[2] - cache[1]) < 1e-9
    per_example = rows(warehouse, "SELECT example_id, count(*) FROM labels GROUP BY ALL")
    assert len(per_example) == EXAMPLES and {n for _, n in per_example} == {1}
    assert not list((warehouse.path.parent / "teacher-journal").glob("*.jsonl"))  # journals replayed
    figures.update(crashes=kills, cases=EXAMPLES, records_lost=0, paid_twice=repeated, kill_points=points)
