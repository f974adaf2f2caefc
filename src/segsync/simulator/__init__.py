"""A local stand-in for the Autopilot v1 REST API (``segsync simulator``), or for Ortto's
(``--api ortto``, :mod:`segsync.simulator.ortto`).

It states the contract of docs/simulator.md on its own and imports nothing else of segsync::

    from segsync.simulator import Simulator, SimulatorConfig, serve_in_thread

    sim = Simulator(SimulatorConfig(rate_limit=0))     # sim.app is the ASGI app
    sim.faults.fail_next(2)                             # in-process fault switches
    sim.faults.hold_after_writes(3)                     # hold requests after 3 writes...
    sim.faults.hold.wait_for_held()                     # (from another thread) until held
    sim.faults.release()                                # ...and let them go on
    with serve_in_thread(sim) as running:               # a real server on a loopback port
        print(running.base_url)                         # http://127.0.0.1:PORT/v1
    with host_in_thread() as host:                      # one server, a simulator per test:
        running = host.serve(SimulatorConfig(seed=1))   # this one answers from now on
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segsync.simulator.apis import create_simulator
    from segsync.simulator.app import Simulator
    from segsync.simulator.config import SimulatorConfig
    from segsync.simulator.faults import Faults, Hold, RateLimiter, Stats
    from segsync.simulator.keys import DEFAULT_API_KEY
    from segsync.simulator.server import (
        RunningSimulator,
        SimulatorHost,
        host_in_thread,
        serve,
        serve_app_in_thread,
        serve_in_thread,
    )

# Each name loads its module on first use (``__getattr__`` below): the server imports uvicorn
# and the app asyncio, which `segsync --help` and the other commands should not pay for.
_MODULES = {
    "DEFAULT_API_KEY": "keys",
    "Faults": "faults",
    "Hold": "faults",
    "RateLimiter": "faults",
    "RunningSimulator": "server",
    "Simulator": "app",
    "SimulatorConfig": "config",
    "SimulatorHost": "server",
    "Stats": "faults",
    "create_simulator": "apis",
    "host_in_thread": "server",
    "serve": "server",
    "serve_app_in_thread": "server",
    "serve_in_thread": "server",
}

__all__ = [
    "DEFAULT_API_KEY",
    "Faults",
    "Hold",
    "RateLimiter",
    "RunningSimulator",
    "Simulator",
    "SimulatorConfig",
    "SimulatorHost",
    "Stats",
    "create_simulator",
    "host_in_thread",
    "serve",
    "serve_app_in_thread",
    "serve_in_thread",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    globals()[name] = value
    return value
