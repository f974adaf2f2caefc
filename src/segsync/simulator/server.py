"""Serving the simulator with uvicorn: blocking (the CLI) or in a background thread (tests)."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from segsync.simulator.app import Simulator
from segsync.simulator.config import SimulatorConfig

STARTUP_TIMEOUT = 15.0


def uvicorn_config(simulator: Simulator, host: str, port: int, *, log_level: str) -> Any:
    """uvicorn settings for speed: uvloop and httptools when installed, no access log."""
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    has_httptools = importlib.util.find_spec("httptools") is not None
    return uvicorn.Config(
        simulator.app,
        host=host,
        port=port,
        loop="uvloop" if has_uvloop else "asyncio",
        http="httptools" if has_httptools else "h11",
        interface="asgi3",
        lifespan="on",
        proxy_headers=False,
        log_level=log_level,
        access_log=False,
        server_header=False,
        date_header=False,
    )


def _as_simulator(config_or_simulator: SimulatorConfig | Simulator | None) -> Simulator:
    if isinstance(config_or_simulator, Simulator):
        return config_or_simulator
    return Simulator(config_or_simulator)


def serve(
    config_or_simulator: SimulatorConfig | Simulator | None,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    log_level: str = "warning",
) -> None:
    """Run the simulator until interrupted (Ctrl-C); the state file is saved on the way out."""
    simulator = _as_simulator(config_or_simulator)
    uvicorn.Server(uvicorn_config(simulator, host, port, log_level=log_level)).run()


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator listening on a real socket: ``base_url`` is what a client is pointed at."""

    root_url: str
    base_url: str
    simulator: Simulator


@contextmanager
def serve_in_thread(
    config_or_simulator: SimulatorConfig | Simulator | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[RunningSimulator]:
    """Run a real uvicorn server in a background thread for the ``with`` block.

    ``port=0`` picks a free port. Returns once the server reports ``started`` (polled), and on
    exit asks it to stop and joins the thread (the state file, if any, is saved on shutdown).
    """
    simulator = _as_simulator(config_or_simulator)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(simulator, host, bound_port, log_level="error"))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # reported to the caller below
            failure.append(err)

    thread = threading.Thread(target=run, name=f"segsync-simulator-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the simulator did not start on {host}:{bound_port}"
                    + (f": {failure[0]!r}" if failure else "")
                )
            time.sleep(0.005)
        root_url = f"http://{host}:{bound_port}"
        yield RunningSimulator(root_url=root_url, base_url=root_url + "/v1", simulator=simulator)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        sock.close()
