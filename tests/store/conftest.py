"""Fixtures for the DuckLake backend: the extensions (or a skip that says how to get them) and a real
Postgres server started from Debian's binaries on a loopback port (or a skip where none is installed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flywheel.store.lake import LakeUnavailable, extension_path

REQUIRE_ENV = "FLYWHEEL_REQUIRE_LAKE"  # set by `make test-lake`: a missing extension fails, never skips


@pytest.fixture(scope="session")
def lake_extensions() -> None:
    try:
        for name in ("ducklake", "sqlite_scanner", "postgres_scanner"):
            extension_path(name)
    except LakeUnavailable as exc:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(str(exc))
        pytest.skip(f"{exc} — the lake runs in its own venv: `make test-lake`")


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres(lake_extensions: None) -> Iterator[Callable[[str], str]]:
    """A real Postgres on 127.0.0.1; calling the fixture creates a database and returns its DSN."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("Debian's postgresql is not installed (/usr/lib/postgresql/*/bin/initdb)")
    # initdb refuses to run as root: run the server as the `postgres` user the package creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="flywheel-pg-"))
    if as_user:
        shutil.chown(root, user="postgres")
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(root / "data"), "--auth=trust", "-U", "postgres", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(root / "data"),
        "-l",
        str(root / "log"),
        "-o",
        options,
        "-w",
        "start",
    )

    def create(name: str) -> str:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name)
        return f"host=127.0.0.1 port={port} user=postgres dbname={name}"

    try:
        yield create
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
