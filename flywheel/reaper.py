"""Clean up after a process that dies without running its exit handlers (kill -9, the OOM killer).

`flywheel run` starts Prefect's ephemeral API as a child process (uvicorn) and relies on an atexit
handler to stop it. After a SIGKILL that handler never runs, and the orphaned server keeps its port,
its memory and the Prefect database open, one more per crash. `reap_children_at_death()` starts a
small watchdog that notes this process's children while it lives and, once it is gone, stops the ones
still running (SIGTERM, then SIGKILL). Linux only (it reads /proc); elsewhere it does nothing.

The watchdog learns of the death through a pipe: the kernel closes our end when we die, however we
die, and only we hold it (pipes are not inherited by other children), so its read sees end-of-file.
"""

from __future__ import annotations

import os
import subprocess
import sys

WATCHDOG = r"""
import os, select, signal, sys, time

parent, fd = int(sys.argv[1]), int(sys.argv[2])


def children():
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and int(entry) != os.getpid():  # not this watchdog itself
            found[int(entry)] = fields[19]  # start time: tells a reused pid from our child
    return found


def alive(pid, started):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


known = {}
while True:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if ready and not os.read(fd, 1):
        break
    known.update(children())
for sig in (signal.SIGTERM, signal.SIGKILL):
    left = {pid: started for pid, started in known.items() if alive(pid, started)}
    for pid in left:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid: started for pid, started in left.items() if alive(pid, started)}
    if not left:
        break
"""

_started = False


def reap_children_at_death() -> None:
    """Start the watchdog once per process (idempotent; a no-op off Linux)."""
    global _started
    if _started or not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        return
    read_end, write_end = os.pipe()  # both close-on-exec: no other child inherits the write end
    try:
        subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(read_end)],
            pass_fds=[read_end],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to our terminal must not stop it before we are gone
        )
    finally:
        os.close(read_end)
    _started = True
    _keep.append(write_end)  # held until this process ends: that end-of-file is the signal


_keep: list[int] = []
