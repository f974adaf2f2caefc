"""``segsync serve``: the web UI and the REST API (``/api/v1``) on one port, the scheduler and
one worker (:mod:`segsync.services.runs.background`), until Ctrl-C or SIGTERM."""

from __future__ import annotations

from typing import Annotated

import typer

from segsync.cli.output import state


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=0, help="Workers in this process (0: none; add `segsync worker`s)."
        ),
    ] = 1,
) -> None:
    """Serve the web UI and the REST API over this data dir, with the scheduler and a worker."""
    # Imported here: every other command would pay for the web stack at start-up otherwise.
    import uvicorn

    from segsync.services.runs.background import BackgroundServices, system_tasks
    from segsync.web.app import create_app, settle_startup_heap

    settings = state(ctx).settings
    app = create_app(settings)
    background = BackgroundServices(settings, tasks=system_tasks(), workers=workers).start()
    settle_startup_heap()
    typer.echo(f"segsync web UI on http://{host}:{port}/ (API: /api/v1/docs); Ctrl-C stops it")
    try:
        uvicorn.run(
            app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False
        )
    finally:
        background.stop()  # a run in flight goes back to the queue after its batches in flight
