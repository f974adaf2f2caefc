"""The Autopilot client never puts the key in a message (issue 14 §1): a bad key is refused by
the client itself (a key stored before keys were checked), and a transport error that quotes our
request — httpx's LocalProtocolError names the header value — is reported by its kind only."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from segsync.destinations.autopilot.client import AutopilotClient
from segsync.destinations.base import ConnectionConfig
from segsync.errors import InputError, RetriableError

CANARY = "CANARYc1ient"


def _config(key: str, transport: httpx.AsyncBaseTransport | None = None) -> ConnectionConfig:
    async def no_wait(_: float) -> None:
        return None

    return ConnectionConfig(
        base_url="http://127.0.0.1:9/v1",
        api_key=key,
        rate_limit=1000.0,
        transport=transport,
        sleep=no_wait,
        max_attempts=2,
    )


@pytest.mark.parametrize("key", [f"sk-{CANARY}\nX: 1", f"sk-{CANARY}\x00", f"sk-{CANARY}é"])
def test_a_bad_key_is_refused_by_the_client_without_naming_it(key: str) -> None:
    with pytest.raises(InputError) as caught:
        AutopilotClient(_config(key))
    assert CANARY not in caught.value.message
    assert "base URL" not in caught.value.message  # the key's fault, not the URL's


class _Quoting(httpx.AsyncBaseTransport):
    """Fails every request the way httpx does for an illegal header: quoting the value."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        value = request.headers["autopilotapikey"]
        raise httpx.LocalProtocolError(f"Illegal header value b'{value}'")


class _Echoing(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"peer said: {request.headers['autopilotapikey']}")


@pytest.mark.parametrize("transport", [_Quoting(), _Echoing()])
def test_a_transport_error_never_repeats_the_key(transport: httpx.AsyncBaseTransport) -> None:
    async def call() -> None:
        client = AutopilotClient(_config(f"sk-{CANARY}-ok", transport))
        try:
            await client.account()
        finally:
            await client.aclose()

    with pytest.raises(RetriableError) as caught:
        asyncio.run(call())
    assert CANARY not in caught.value.message
    assert "could not reach Autopilot" in caught.value.message
