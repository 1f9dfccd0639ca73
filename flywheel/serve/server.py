"""Assemble and run the server from flywheel.yaml: the one place clients are built for `flywheel serve`."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from flywheel.config import FlywheelConfig
from flywheel.config.serve import ServeConfig
from flywheel.layout import MANIFEST_NAME
from flywheel.serve.app import make_app
from flywheel.serve.champions import ChampionWatcher, import_loader
from flywheel.serve.settings import ServeSettings, build_settings, spool_dir
from flywheel.serve.spool import SpoolWriter
from flywheel.serve.teacher import TeacherClients, build_teacher_clients


@dataclass
class Server:
    app: FastAPI
    settings: ServeSettings
    manifest: Path
    spool_dir: Path
    teachers: TeacherClients

    def describe(self) -> dict[str, Any]:
        return {
            "workloads": sorted(self.settings.workloads),
            "models": self.settings.model_names,
            "champions_manifest": str(self.manifest),
            "spool_dir": str(self.spool_dir),
            "auth": bool(self.settings.api_keys),
            "teachers": {w: self.teachers.available(w) for w in sorted(self.settings.workloads)},
        }


def build_server(config: FlywheelConfig, home: Path, serve: ServeConfig | None = None) -> Server:
    settings = build_settings(config, serve)
    options = settings.serve
    loader = import_loader(options.student_loader) if options.student_loader else None
    manifest = home / MANIFEST_NAME
    champions = ChampionWatcher(
        manifest,
        loader=loader,
        poll_s=options.champions_poll_s,
        max_batch=options.max_batch,
        max_wait_ms=options.max_wait_ms,
    )
    directory = spool_dir(options, home)
    spool = SpoolWriter(
        directory,
        rotate_bytes=int(options.spool_rotate_mb * 1024 * 1024),
        rotate_seconds=options.spool_rotate_s,
        gzip_rotated=options.spool_gzip,
    )
    teachers = TeacherClients(build_teacher_clients(config), settings.teacher_models)
    app = make_app(settings, champions=champions, teacher_client=teachers, spool=spool)
    return Server(app, settings, manifest, directory, teachers)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving so port 0 gets a real port the caller can be told about."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(app: FastAPI, sock: socket.socket, log_level: str = "info") -> None:
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, timeout_graceful_shutdown=10, backlog=2048
    )
    uvicorn.Server(config).run(sockets=[sock])
