"""Real subprocesses for crash tests: start a script, watch its stdout, SIGKILL it at a chosen point.

A child prints one line per unit of progress (a batch ingested, an answer labeled, a training step);
the test picks how many of those lines to wait for (from a seeded RNG) and how long to wait after
the last one, so kills land at reproducible *kinds* of points: during start-up and migration,
between batches, inside a write transaction.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FLYWHEEL = Path(sys.executable).with_name("flywheel")
FIGURES: list[dict[str, Any]] = []  # rows appended by passing tests; printed at the end of the session


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return {**env, **extra}


@dataclass
class Child:
    """A subprocess in its own session, its stdout lines collected by a reader thread."""

    process: subprocess.Popen[str]
    stderr_path: Path
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait_for(self, prefix: str, count: int, timeout_s: float) -> bool:
        """Block until `count` lines starting with `prefix` arrived; False when the child ended first."""
        deadline = time.monotonic() + timeout_s
        got = sum(line.startswith(prefix) for line in self.seen)
        while got < count:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty as exc:
                raise AssertionError(f"no {prefix!r} line #{count} in {timeout_s}s: {self.stderr}") from exc
            if line is None:
                return False
            self.seen.append(line)
            got += line.startswith(prefix)
        return True

    def kill9(self) -> bool:
        """SIGKILL the process itself (not its group, like the OOM killer); True when it was alive."""
        alive = self.process.poll() is None
        if alive:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        return alive and self.process.returncode == -signal.SIGKILL

    def finish(self, timeout_s: float) -> list[str]:
        """Wait for a normal exit; every stdout line."""
        self.process.wait(timeout_s)
        while True:
            line = self.lines.get(timeout=timeout_s)
            if line is None:
                return self.seen
            self.seen.append(line)

    def reap_group(self, grace_s: float = 10.0) -> int:
        """Processes of the child's session still alive `grace_s` after it died (then killed)."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not _group_alive(self.process.pid):
                return 0
            time.sleep(0.1)
        left = len(_group_members(self.process.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return left


def spawn(
    args: list[str],
    workdir: Path,
    name: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Child:
    stderr_path = workdir / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env or child_env(),
            cwd=REPO,
            start_new_session=True,  # its own process group: orphans it leaves can be found
            preexec_fn=preexec_fn,
        )
    child = Child(process, stderr_path)
    threading.Thread(target=_pump, args=(process, child.lines), daemon=True).start()
    return child


def spawn_python(code: str, workdir: Path, name: str, *args: str, **env: str) -> Child:
    script = workdir / f"{name}.py"
    script.write_text(code)
    return spawn([sys.executable, str(script), *args], workdir, name, child_env(**env))


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, /proc/<pid>/stat fields after the command name) for every live process: state, ppid,
    pgrp, ... (field 0 here is field 3 of proc(5)); processes that vanish meanwhile are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry.name), fields


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, fields in proc_stats() if int(fields[2]) == pgid and fields[0] != "Z"]


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


def start_serve(
    config: Path,
    home: Path,
    name: str = "serve",
    preexec_fn: Callable[[], None] | None = None,
    **env: str,
) -> tuple[Child, str]:
    """`flywheel serve --port 0` in a subprocess; returns it and its base URL once /health answers."""
    import json

    import httpx

    args = [str(FLYWHEEL), "--config", str(config), "--home", str(home), "serve", "--port", "0", "--json"]
    child = spawn(args, home, name, child_env(**env), preexec_fn)
    if not child.wait_for("{", 1, timeout_s=60):
        raise AssertionError("flywheel serve exited: " + child.stderr)
    base = json.loads(child.seen[-1])["url"].removesuffix("/v1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return child, base
        except httpx.HTTPError:
            time.sleep(0.05)
    child.kill9()
    raise AssertionError("flywheel serve never became healthy: " + child.stderr)


def stop(child: Child, timeout_s: float = 20) -> int:
    """SIGTERM and wait: the clean shutdown path."""
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGTERM)
    return child.process.wait(timeout_s)
