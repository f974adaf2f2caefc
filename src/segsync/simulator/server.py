"""Serving the simulator with uvicorn: blocking (the CLI) or in a background thread (tests),
alone or as the simulator of the moment behind a :class:`SimulatorHost`."""

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

from segsync.simulator.apis import create_simulator
from segsync.simulator.app import Receive, Scope, Send, Simulator, send_reply
from segsync.simulator.config import SimulatorConfig
from segsync.simulator.endpoints import error

STARTUP_TIMEOUT = 15.0


def uvicorn_config(app: Any, host: str, port: int, *, log_level: str) -> Any:
    """uvicorn settings for speed: uvloop and httptools when installed, no access log."""
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    has_httptools = importlib.util.find_spec("httptools") is not None
    return uvicorn.Config(
        app,
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
    return create_simulator(config_or_simulator)


def serve(
    config_or_simulator: SimulatorConfig | Simulator | None,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    log_level: str = "warning",
) -> None:
    """Run the simulator until interrupted (Ctrl-C); the state file is saved on the way out."""
    simulator = _as_simulator(config_or_simulator)
    uvicorn.Server(uvicorn_config(simulator.app, host, port, log_level=log_level)).run()


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator listening on a real socket: ``base_url`` is what a client is pointed at."""

    root_url: str
    base_url: str
    simulator: Simulator


@contextmanager
def serve_app_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve an ASGI ``app`` with a real uvicorn server in a background thread for the ``with``
    block; yield its root URL (``http://127.0.0.1:PORT``).

    ``port=0`` picks a free port. Returns once the server reports ``started`` (polled), and on
    exit asks it to stop and joins the thread (the app's lifespan shutdown runs first).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, host, bound_port, log_level="error"))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # reported to the caller below
            failure.append(err)

    thread = threading.Thread(target=run, name=f"segsync-server-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start on {host}:{bound_port}"
                    + (f": {failure[0]!r}" if failure else "")
                )
            time.sleep(0.005)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        sock.close()


@contextmanager
def serve_in_thread(
    config_or_simulator: SimulatorConfig | Simulator | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[RunningSimulator]:
    """Run the simulator on a real uvicorn server in a background thread for the ``with``
    block (see :func:`serve_app_in_thread`; the state file, if any, is saved on shutdown)."""
    simulator = _as_simulator(config_or_simulator)
    with serve_app_in_thread(simulator.app, host, port) as root_url:
        yield RunningSimulator(root_url=root_url, base_url=root_url + "/v1", simulator=simulator)


class SimulatorHost:
    """One loopback server for many simulators in turn: :meth:`serve` puts a fresh simulator
    behind the same port, so a test suite pays for one server start and stop, not one per test.

    Start it with :func:`host_in_thread`. Requests go to the simulator served last; before the
    first, ``/v1`` and ``/_sim`` answer 503. A state file is not supported here (the host runs
    no simulator's lifespan): use :func:`serve_in_thread` for that.
    """

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url
        self._current: Simulator | None = None

    def serve(
        self, config_or_simulator: SimulatorConfig | Simulator | None = None
    ) -> RunningSimulator:
        """Put ``config_or_simulator`` behind the server from now on (the previous simulator's
        held requests, if any, are released) and describe it as running there."""
        simulator = _as_simulator(config_or_simulator)
        if simulator.config.state_file is not None:
            raise ValueError("a hosted simulator cannot keep a state file; use serve_in_thread")
        previous, self._current = self._current, simulator
        if previous is not None:
            previous.faults.release()
        return RunningSimulator(self.root_url, self.root_url + "/v1", simulator)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        current = self._current
        if current is None:
            await send_reply(send, error(503, "No simulator is served here yet."))
            return
        await current.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._current is not None:
                    self._current.faults.release()  # nothing held keeps the server up
                await send({"type": "lifespan.shutdown.complete"})
                return


@contextmanager
def host_in_thread(host: str = "127.0.0.1", port: int = 0) -> Iterator[SimulatorHost]:
    """A :class:`SimulatorHost` on a real uvicorn server in a background thread."""
    hosting = SimulatorHost("")
    with serve_app_in_thread(hosting.app, host, port) as root_url:
        hosting.root_url = root_url
        yield hosting
