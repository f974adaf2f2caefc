"""Fixtures for the destination tests: virtual time and fake Autopilot endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from segsync.destinations.base import ConnectionConfig


class VirtualTime:
    """A clock that only moves when someone sleeps: no real waiting, every wait recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Script:
    """A fake API: answers come from ``responses`` in order (then from ``fallback``), and every
    request is kept for inspection."""

    responses: list[httpx.Response | Exception] = field(default_factory=list)
    fallback: Handler | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.responses:
            answer = self.responses.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        assert self.fallback is not None, f"unexpected request {request.method} {request.url}"
        return self.fallback(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def config_for(
    handler: Handler, vtime: VirtualTime, *, rate: float = 1000.0, **overrides: Any
) -> ConnectionConfig:
    base = ConnectionConfig(
        base_url="https://autopilot.test/v1",
        api_key="test-key",
        rate_limit=rate,
        transport=httpx.MockTransport(handler),
        clock=vtime.clock,
        sleep=vtime.sleep,
        wall_clock=lambda: 1_700_000_000.0,
        random=lambda: 0.5,
        max_attempts=4,
    )
    return replace(base, **overrides)


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def asgi_config(app: Any, api_key: str, *, max_attempts: int) -> ConnectionConfig:
    """A connection to a simulator's ASGI ``app`` in this process (no socket), fast and with
    a quick backoff."""
    return ConnectionConfig(
        base_url="http://simulator.test/v1",
        api_key=api_key,
        rate_limit=1000.0,
        transport=httpx.ASGITransport(app=app),
        max_attempts=max_attempts,
        backoff_base=0.001,
    )
