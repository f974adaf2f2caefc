"""Ortto's API over the shared request core: pacing (adaptive rate), retries, ``Retry-After`` and
the classification of answers are :meth:`AutopilotClient.request`'s, unchanged; this module
only speaks Ortto's dialect of HTTP:

* the key goes in ``X-Api-Key`` (not ``autopilotapikey``);
* errors are ``{"error": {"code", "message"}}``: the message is read from there;
* a 429 says when to come back in its body (``"try-in-seconds"``) rather than in a
  ``Retry-After`` header: :class:`OrttoAnswers` copies it into the header the core honours;
* messages name Ortto and its default base URL.

One method per endpoint segsync uses (docs/ortto-api.md).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx

from segsync.destinations.autopilot.client import (
    DEFAULT_BASE_URL as AUTOPILOT_BASE_URL,
)
from segsync.destinations.autopilot.client import AutopilotClient, Reply
from segsync.destinations.autopilot.client import unexpected as worded_for_autopilot
from segsync.destinations.base import ConnectionConfig
from segsync.destinations.wire import default_transport
from segsync.errors import FatalError, InputError, SegsyncError

API_KEY_HEADER = "X-Api-Key"
DEFAULT_BASE_URL = "https://api.ap3api.com/v1"
REGION_BASE_URLS = {
    "default": DEFAULT_BASE_URL,
    "eu": "https://api.eu.ap3api.com/v1",
    "au": "https://api.au.ap3api.com/v1",
}
"""Ortto's service endpoints by instance region (docs/ortto-api.md, "Transport")."""
AUDIENCES_PAGE = 40
PEOPLE_PAGE = 500
MERGE_OPTIONS = {"merge_by": ["str::email"], "merge_strategy": 2, "find_strategy": 0}
"""Match people on their email; overwrite the fields sent, keep the others."""


class OrttoAnswers(httpx.AsyncBaseTransport):
    """Wraps the real transport: a 429 whose body says ``"try-in-seconds"`` gets the matching
    ``Retry-After`` header, so the shared retry logic waits as long as Ortto asks."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.status_code != 429 or "retry-after" in response.headers:
            return response
        body = await response.aread()
        seconds = _try_in_seconds(body)
        headers = response.headers.copy()
        if seconds is not None:
            headers["Retry-After"] = f"{seconds:g}"
        return httpx.Response(429, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _try_in_seconds(body: bytes) -> float | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    value = error.get("try-in-seconds") if isinstance(error, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class OrttoClient(AutopilotClient):
    """Rate-limited, retrying access to one Ortto account. Safe for concurrent use."""

    def __init__(self, config: ConnectionConfig) -> None:
        if not config.api_key.strip():
            raise InputError("the Ortto API key is empty; enter the key of the connection")
        connections = config.max_connections
        inner = (  # wrapped: httpx's transport here ignores the environment's proxies
            config.transport
            or default_transport(connections)
            or httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=connections))
        )
        try:
            super().__init__(replace(config, transport=OrttoAnswers(inner)))
        except SegsyncError as err:
            raise _in_ortto_words(err) from None
        headers = self._http.headers
        headers.pop("autopilotapikey", None)
        headers[API_KEY_HEADER] = config.api_key.strip()

    async def request(self, method: str, path: str, **options: Any) -> Reply:
        try:
            reply = await super().request(method, path, **options)
        except SegsyncError as err:
            raise _in_ortto_words(err) from None
        if not reply.message:
            reply = replace(reply, message=error_message(reply.data))
        return reply

    # --- endpoints -----------------------------------------------------------------------

    async def merge_people(self, people: list[dict[str, Any]]) -> Reply:
        """Idempotent: people are matched on their email."""
        body = {"people": people, "async": False, **MERGE_OPTIONS}
        return await self.request("POST", "/person/merge", route="/person/merge", body=body)

    async def subscribe(self, audience_id: str, emails: list[str], subscribed: bool) -> Reply:
        """Idempotent: setting a subscription twice leaves it as it is."""
        people = [{"email": email, "subscribed": subscribed} for email in emails]
        body = {"audience_id": audience_id, "people": people, "async": False}
        return await self.request(
            "PUT", "/audience/subscribe", route="/audience/subscribe", body=body
        )

    async def audiences_page(
        self, offset: int, *, search: str | None = None, max_attempts: int | None = None
    ) -> Reply:
        """One page of audiences (Ortto's largest, 40), by name when ``search`` is given."""
        body: dict[str, Any] = {"limit": AUDIENCES_PAGE, "offset": offset}
        if search:
            body["search_term"] = search
        return await self.request(
            "POST", "/audiences/get", route="/audiences/get", body=body, max_attempts=max_attempts
        )

    async def create_audience(self, name: str) -> Reply:
        """Not idempotent (names may repeat): transient failures are raised."""
        return await self.request(
            "POST",
            "/audiences/create",
            route="/audiences/create",
            body={"name": name},
            idempotent=False,
        )

    async def people_page(self, body: dict[str, Any]) -> Reply:
        return await self.request("POST", "/person/get", route="/person/get", body=body)

    async def archive(self, person_ids: list[str]) -> Reply:
        body = {"inclusion_ids": person_ids}
        return await self.request("PUT", "/person/archive", route="/person/archive", body=body)

    async def delete(self, person_ids: list[str]) -> Reply:
        body = {"inclusion_ids": person_ids}
        return await self.request("DELETE", "/person/delete", route="/person/delete", body=body)


def error_message(data: Any) -> str:
    """The text of an Ortto error body (``{"error": {"message": ...}}``), or ``""``."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return error if isinstance(error, str) else ""


def _in_ortto_words(err: SegsyncError) -> SegsyncError:
    """The same error, its message naming Ortto (the shared core words it for Autopilot)."""
    text = err.message.replace(AUTOPILOT_BASE_URL, DEFAULT_BASE_URL)
    text = text.replace("autopilotapikey", API_KEY_HEADER).replace("Autopilot", "Ortto")
    err.message = text
    err.args = (text,)
    return err


def unexpected(reply: Reply, what: str) -> FatalError:
    """The error for an answer the contract does not allow (wrong base URL, API change)."""
    error = _in_ortto_words(worded_for_autopilot(reply, what))
    assert isinstance(error, FatalError)
    return error
