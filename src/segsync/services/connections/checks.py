"""Connect (C2): check an API key against the destination and say what happened.

A check answers within seconds: few attempts, short backoff and timeout, so an unreachable
service is reported rather than waited out. The outcome is data (:class:`CheckOutcome`), not an
exception, so callers decide whether it refuses a save or is recorded on the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from segsync.destinations.base import AccountInfo, ConnectionConfig
from segsync.destinations.registry import capabilities, create_destination
from segsync.errors import AuthenticationFailed, FatalError, RetriableError

HEALTH_UNCHECKED = "unchecked"
HEALTH_OK = "ok"
HEALTH_KEY_REJECTED = "key_rejected"
HEALTH_UNREACHABLE = "unreachable"
HEALTH_SECRET_UNREADABLE = "secret_unreadable"  # noqa: S105 - a status, not a secret
HEALTH_ERROR = "error"
"""The destination answered something unexpected (often a wrong base URL)."""

CHECK_ATTEMPTS = 3
CHECK_BACKOFF_SECONDS = 0.2
CHECK_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class CheckOutcome:
    """``health`` is one of the ``HEALTH_*`` values; ``message`` a sentence for people (never
    the key); ``instance_id`` the destination account on success."""

    health: str
    message: str
    instance_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.health == HEALTH_OK


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, also when this thread has a running loop
    (then in a helper thread)."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def check_key(type_name: str, *, base_url: str, api_key: str, rate_limit: float) -> CheckOutcome:
    """Ask the destination who ``api_key`` belongs to (Autopilot: ``GET /account``).

    Raises :class:`~segsync.errors.InputError` only for a base URL the client cannot use;
    every answer of the service (or its silence) is a :class:`CheckOutcome`.
    """
    display = capabilities(type_name).display_name or type_name
    config = ConnectionConfig(
        base_url=base_url,
        api_key=api_key,
        rate_limit=rate_limit,
        max_attempts=CHECK_ATTEMPTS,
        backoff_base=CHECK_BACKOFF_SECONDS,
        timeout=CHECK_TIMEOUT_SECONDS,
    )

    async def check() -> AccountInfo:
        async with create_destination(type_name, config) as destination:
            return await destination.check_credentials()

    try:
        info = run_sync(check)
    except AuthenticationFailed as err:
        return CheckOutcome(HEALTH_KEY_REJECTED, err.message)
    except RetriableError as err:
        prefix = f"could not reach {display} at"
        detail = (
            err.message if err.message.startswith(prefix) else f"{prefix} {base_url}: {err.message}"
        )
        return CheckOutcome(HEALTH_UNREACHABLE, f"{detail}; check the base URL and the network")
    except FatalError as err:
        return CheckOutcome(HEALTH_ERROR, err.message)
    return CheckOutcome(
        HEALTH_OK, f"connected to {display} (instance {info.instance_id})", info.instance_id
    )
