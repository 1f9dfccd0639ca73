"""`flywheel serve`: the OpenAI-compatible endpoint (champion students, teacher fallback, capture)."""

from __future__ import annotations

import logging
import sys

import typer

from flywheel.cli.app import JsonOpt, app, emit, fail, guarded, out, state

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on"),
    port: int = typer.Option(8000, "--port", help="Port (0 = any free port; the chosen one is printed)"),
    shadow_rate: float | None = typer.Option(None, "--shadow-rate", help="Override serve.shadow_rate"),
    max_batch: int | None = typer.Option(None, "--max-batch", help="Override serve.max_batch"),
    log_level: str = typer.Option("info", "--log-level", help=f"One of {', '.join(LOG_LEVELS)}"),
    as_json: bool = JsonOpt,
) -> None:
    """Serve /v1/chat/completions: students answer, the teacher backs them up, every call is captured.

    With --json, one JSON object (url, port, workloads, spool_dir, ...) is printed once the socket is
    bound; the server then runs until interrupted. Logs go to stderr and never hold prompt text unless
    serve.log_prompts is set.
    """
    if log_level not in LOG_LEVELS:
        fail(as_json, f"--log-level must be one of {', '.join(LOG_LEVELS)}", code=2)
    cli = state(ctx)
    with guarded(as_json):
        from flywheel.config.serve import ServeConfig
        from flywheel.serve.server import bind_socket, build_server, run

        config = cli.require_config()
        overrides = {
            k: v for k, v in {"shadow_rate": shadow_rate, "max_batch": max_batch}.items() if v is not None
        }
        try:
            options = ServeConfig.model_validate(
                {**(config.serve or ServeConfig()).model_dump(), **overrides}
            )
            server = build_server(config, cli.home, options)
        except (ValueError, ImportError) as exc:
            fail(as_json, f"cannot start the server: {exc}", code=2)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        fail(as_json, f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound_port = sock.getsockname()[1]
    url = f"http://{host}:{bound_port}/v1"
    payload = {"url": url, "host": host, "port": bound_port, "home": str(cli.home), **server.describe()}
    emit(as_json, payload, lambda: out.print(f"serving {', '.join(server.settings.model_names)} at {url}"))
    logging.basicConfig(
        stream=sys.stderr, level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(server.app, sock, log_level=log_level)
