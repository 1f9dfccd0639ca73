"""The `runner:` switch: local by default, dask or ray with a local cluster or an address; anything
else is refused with the key's path and line."""

import re
from pathlib import Path

import pytest
import yaml

from flywheel.config import ConfigError, load_config


def _config(tmp_path: Path, runner: dict | None) -> Path:
    body = {"workloads": [{"id": "w", "task": "classification", "labels": ["a", "b"]}]}
    if runner is not None:
        body["runner"] = runner
    path = tmp_path / "flywheel.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def test_default_runs_in_the_flow_process(tmp_path: Path) -> None:
    runner = load_config(_config(tmp_path, None)).runner
    assert (runner.kind, runner.fans_out) == ("local", False)


def test_dask_local_cluster_and_address(tmp_path: Path) -> None:
    runner = load_config(_config(tmp_path, {"kind": "dask", "workers": 3, "shard_size": 10})).runner
    assert (runner.kind, runner.workers, runner.shard_size, runner.address) == ("dask", 3, 10, None)
    assert runner.fans_out
    assert runner.concurrent_tasks == 3
    remote = load_config(_config(tmp_path, {"kind": "dask", "address": "tcp://10.0.0.5:8786"})).runner
    assert remote.address == "tcp://10.0.0.5:8786"


def test_ray_local_or_address(tmp_path: Path) -> None:
    runner = load_config(_config(tmp_path, {"kind": "ray", "workers": 4, "threads_per_worker": 2})).runner
    assert (runner.kind, runner.fans_out, runner.concurrent_tasks) == ("ray", True, 4)  # a CPU per task
    remote = load_config(_config(tmp_path, {"kind": "ray", "address": "ray://head:10001"})).runner
    assert remote.address == "ray://head:10001"


@pytest.mark.parametrize(
    ("runner", "words"),
    [
        ({"kind": "spark"}, ["runner.kind", "'local'", "'dask'", "'ray'"]),
        ({"kind": "local", "address": "tcp://h:8786"}, ["runner", "only used with kind: dask or ray"]),
        ({"kind": "dask", "workers": 0}, ["runner.workers"]),
        ({"kind": "dask", "shards": 4}, ["runner.shards"]),
    ],
)
def test_bad_runner_is_refused_by_key_and_line(tmp_path: Path, runner: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_config(tmp_path, runner))
    message = str(error.value)
    assert re.search(r"flywheel\.yaml:\d+: runner", message), message  # file:line: key path
    for word in words:
        assert word in message
