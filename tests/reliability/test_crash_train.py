"""kill -9 of a training process (tiny scratch student), twice, then a re-run that resumes.

The kills land between optimizer steps at seeded random steps: the child pauses after reporting an
odd step (checkpoints are saved every 2 steps), and the test kills it during that pause. A kill in
the middle of writing a checkpoint is the separate, deterministic test below.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flywheel.config import WorkloadConfig, load_config
from flywheel.demo import demo_config_path, generate_demo_traffic
from flywheel.records import Example
from flywheel.store.db import Warehouse
from flywheel.train import train_candidate
from flywheel.train.fixtures import demo_examples, split_examples
from tests.reliability.helpers import spawn_python
from tests.train.conftest import tiny_student

pytestmark = pytest.mark.slow
SEED = 3333
MAX_STEPS = 8
OPTIONS = {"max_steps": MAX_STEPS, "save_steps": 2, "val_examples": 0}

TRAIN_CHILD = """
import sys, time
from pathlib import Path
from flywheel.store.db import Warehouse
from flywheel.train import train_candidate
from tests.reliability.test_crash_train import OPTIONS, routing_data
from tests.train.conftest import tiny_student

def main():
    demo_dir, out_dir, warehouse = Path(sys.argv[1]), Path(sys.argv[2]), Warehouse(sys.argv[3])
    pause_at = int(sys.argv[4])
    workload, train, val = routing_data(demo_dir)

    def progress(name, done, total):
        print("step", done, flush=True)
        if done == pause_at:
            time.sleep(60)  # the test kills us here: between two optimizer steps

    train_candidate(tiny_student(options=OPTIONS), workload, train, val, out_dir=out_dir,
                    snapshot_id="s1", warehouse=warehouse, seed=1, progress=progress)

if __name__ == "__main__":
    main()
"""


def routing_data(demo_dir: Path) -> tuple[WorkloadConfig, list[Example], list[Example]]:
    workload = next(w for w in load_config(demo_config_path()).workloads if w.id == "support-routing")
    train, val, _ = split_examples(demo_examples(demo_dir, "support-routing"))
    return workload, train[:40], val[:8]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_traffic(out, seed=3, size=200)
    return out


def test_training_killed_twice_resumes_from_its_checkpoint(
    tmp_path: Path, demo_dir: Path, figures: dict
) -> None:
    warehouse, out_dir = Warehouse(tmp_path / "warehouse.duckdb"), tmp_path / "models"
    rng = random.Random(SEED)
    first = rng.choice([3, 5])
    pauses = [first, rng.choice(range(first + 2, MAX_STEPS, 2))]  # odd steps, the second one later
    kills = 0
    for attempt, pause in enumerate(pauses):
        args = (str(demo_dir), str(out_dir), str(warehouse.path), str(pause))
        child = spawn_python(TRAIN_CHILD, tmp_path, f"train-{attempt}", *args)
        assert child.wait_for(f"step {pause}", 1, timeout_s=240), child.stderr
        kills += child.kill9()
        steps = [int(line.split()[1]) for line in child.seen if line.startswith("step")]
        assert steps[0] == (1 if attempt == 0 else pauses[attempt - 1]), steps  # resumed, not restarted
    workload, train, val = routing_data(demo_dir)
    seen: list[int] = []
    trained = train_candidate(
        tiny_student(options=OPTIONS),
        workload,
        train,
        val,
        out_dir=out_dir,
        snapshot_id="s1",
        warehouse=warehouse,
        seed=1,
        progress=lambda name, done, total: seen.append(done),
    )
    assert kills == 2
    assert trained.resumed_from_step == pauses[-1] - 1  # the checkpoint saved just before the kill
    assert seen == list(range(pauses[-1], MAX_STEPS + 1))
    assert [row["step"] for row in trained.loss_curve] == list(range(1, MAX_STEPS + 1))
    registered = warehouse.read(
        lambda con: con.execute("SELECT model_id, path FROM models WHERE name = 'scratch-tiny'").fetchall()
    )
    assert len(registered) == 1 and Path(registered[0][1]).is_dir()  # registered once, artifact there
    assert not list((out_dir / workload.id / ".runs").iterdir())
    figures.update(crashes=kills, cases=MAX_STEPS, records_lost=0, kill_steps=pauses)


def test_checkpoint_torn_by_a_kill_mid_save_is_skipped(tmp_path: Path, demo_dir: Path) -> None:
    workload, train, val = routing_data(demo_dir)
    candidate = tiny_student(options={**OPTIONS, "max_steps": 6})
    kwargs = {"out_dir": tmp_path / "models", "snapshot_id": "s1", "warehouse": None, "seed": 1}

    class Killed(Exception):
        pass

    def die_at_five(name: str, done: int, total: int) -> None:
        if done == 5:
            raise Killed

    with pytest.raises(Killed):
        train_candidate(candidate, workload, train, val, progress=die_at_five, **kwargs)
    [run_dir] = (tmp_path / "models" / workload.id / ".runs").iterdir()
    torn = run_dir / "main" / "checkpoint-4"
    # What a kill during Trainer._save_checkpoint leaves: weights written, trainer state not yet.
    (torn / "trainer_state.json").unlink()
    trained = train_candidate(candidate, workload, train, val, **kwargs)
    assert trained.resumed_from_step == 2
