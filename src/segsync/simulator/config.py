"""How a simulator is set up: keys, rate limit, persistence and the faults it starts with."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from segsync.simulator.keys import DEFAULT_API_KEY

__all__ = ["DEFAULT_API_KEY", "SIMULATED_APIS", "SimulatorConfig"]

SIMULATED_APIS = ("autopilot", "ortto")
"""The APIs a simulator can stand in for (``SimulatorConfig.api``)."""


@dataclass
class SimulatorConfig:
    """Everything a :class:`~segsync.simulator.Simulator` is built from.

    ``rate_limit`` is requests per second per API key (a token bucket of that capacity, refilled
    at that rate); ``0`` turns it off. ``clock`` drives the token bucket and ``sleep`` is what
    the added latency awaits, so tests can inject both. ``retry_after`` (seconds) adds a
    ``Retry-After`` header to every 429. The fault fields (``latency_ms``,
    ``hold_after_writes``, ``throttle_next``, ``fail_next``, ``timeout_next_writes``,
    ``reject_email_pattern``, ``revoked_keys``) are the switches the simulator starts with;
    they can be changed while it runs through ``Simulator.faults`` or ``POST /_sim/faults``.
    ``seed`` makes the generated ids deterministic (``None``: different ids in every process).
    ``state_file`` keeps the state across restarts; it is written atomically at most every
    ``save_interval`` seconds while writes happen, and when the server stops. ``wall_clock``
    stamps ``created_at``/``updated_at``. ``api`` is the API simulated: ``autopilot`` (the
    default) or ``ortto`` (:func:`~segsync.simulator.apis.create_simulator` builds either).
    """

    api_keys: list[str] = field(default_factory=lambda: [DEFAULT_API_KEY])
    rate_limit: float = 5.0
    latency_ms: float = 0.0
    state_file: Path | None = None
    retry_after: float | None = None
    reject_email_pattern: str | None = None
    clock: Callable[[], float] = time.monotonic
    fail_next: int = 0
    timeout_next_writes: int = 0
    throttle_next: int = 0
    hold_after_writes: int | None = None
    revoked_keys: list[str] = field(default_factory=list)
    seed: int | None = None
    wall_clock: Callable[[], float] = time.time
    save_interval: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    api: str = "autopilot"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.api not in SIMULATED_APIS:
            problems.append(f"api must be one of {', '.join(SIMULATED_APIS)}, not {self.api!r}")
        if not self.api_keys or any(not key for key in self.api_keys):
            problems.append("api_keys must hold at least one non-empty key")
        if self.rate_limit < 0:
            problems.append(f"rate_limit must be 0 (off) or positive, not {self.rate_limit}")
        if self.latency_ms < 0:
            problems.append(f"latency_ms must be 0 or positive, not {self.latency_ms}")
        if self.retry_after is not None and self.retry_after < 0:
            problems.append(f"retry_after must be 0 or positive, not {self.retry_after}")
        for name in ("fail_next", "timeout_next_writes", "throttle_next"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or positive, not {getattr(self, name)}")
        if self.hold_after_writes is not None and self.hold_after_writes < 0:
            problems.append(
                f"hold_after_writes must be 0 or positive, not {self.hold_after_writes}"
            )
        if self.save_interval < 0:
            problems.append(f"save_interval must be 0 or positive, not {self.save_interval}")
        if self.reject_email_pattern is not None:
            try:
                re.compile(self.reject_email_pattern)
            except re.error as err:
                problems.append(
                    f"reject_email_pattern {self.reject_email_pattern!r} is not a valid "
                    f"regular expression: {err}"
                )
        if self.state_file is not None:
            self.state_file = Path(self.state_file)
        if problems:
            raise ValueError("; ".join(problems))
