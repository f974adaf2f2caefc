"""The Autopilot REST API (v1) over ``httpx.AsyncClient``: one method per endpoint segsync uses.

Every request goes through :meth:`AutopilotClient.request`, the one place where HTTP outcomes
are classified:

* 2xx, and the 4xx the caller must interpret (400, 404, 409): returned as a :class:`Reply`;
* 401 → :class:`~segsync.errors.AuthenticationFailed` at once, no retry; 403 likewise;
* 429 → the client's rate goes down (:class:`~segsync.destinations.pacing.AdaptiveRate`) and
  the request is sent again when the lowered rate (or ``Retry-After``) allows, without using up
  an attempt — until the rate is at its floor, from where 429s count like 500s;
* 408, 5xx and transport errors → retried with backoff (``Retry-After`` honoured), then
  :class:`~segsync.errors.RateLimited` / :class:`~segsync.errors.RetriableError`.

httpx exceptions never leave this module. Messages name the endpoint by its route
(``/contact/{contact}``), never the email in the path: they end up in logs and run records.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from segsync.destinations.base import ConnectionConfig
from segsync.destinations.pacing import AdaptiveRate, LatencyGauge
from segsync.destinations.retry import (
    MAX_RETRY_AFTER,
    RetryPolicy,
    is_retriable_status,
    parse_retry_after,
)
from segsync.destinations.wire import default_transport
from segsync.domain.untrusted import api_key_problem, clip
from segsync.errors import AuthenticationFailed, FatalError, InputError, RateLimited, RetriableError

log = logging.getLogger(__name__)

# Failures that prove the request never reached the server: safe to retry any call.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

API_KEY_HEADER = "autopilotapikey"
DEFAULT_BASE_URL = "https://api2.autopilothq.com/v1"

# RFC 3986 pchar minus the unreserved set quote() keeps anyway: an email goes into the path as
# written (the API's clients send it unencoded), except the few characters that would end or
# split the path ("/", "?", "#", "%", spaces).
_PATH_SAFE = "@!$&'()*+,;=:"


def contact_ref(email: str) -> str:
    """An email as a ``{contact}`` path segment."""
    return quote(email, safe=_PATH_SAFE)


@dataclass(frozen=True)
class Reply:
    """An answer the caller interprets. ``data`` is the decoded JSON body (None if empty or not
    JSON); ``message`` the API's error text; ``attempts`` the requests it took; ``ambiguous`` is
    True when an earlier attempt may already have taken effect (a 408, a 5xx or a lost
    response), so e.g. a 404 on a retried DELETE may mean our own first try deleted it."""

    status: int
    data: Any
    message: str
    attempts: int
    ambiguous: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AutopilotClient:
    """Rate-limited, retrying access to one Autopilot account. Safe for concurrent use."""

    def __init__(self, config: ConnectionConfig) -> None:
        problem = api_key_problem(config.api_key.strip())
        if problem is not None:
            raise InputError(f"{problem}; edit the connection and enter its key again")
        self.config = config
        self.rate = AdaptiveRate.for_connection(config)
        self.bucket = self.rate.bucket
        self.latency = LatencyGauge()
        self.policy = RetryPolicy(
            max_attempts=config.max_attempts,
            base=config.backoff_base,
            maximum=config.backoff_max,
            random=config.random,
        )
        self.requests_made = 0
        self._slots = asyncio.Semaphore(config.max_connections)
        self._transport = config.transport or default_transport(config.max_connections)
        """Where requests go straight (:meth:`_send`); None: httpx's client picks (a proxy)."""
        try:
            self._http = httpx.AsyncClient(
                base_url=config.base_url,
                headers={API_KEY_HEADER: config.api_key.strip(), "Accept": "application/json"},
                transport=self._transport,
                timeout=config.timeout,
                limits=httpx.Limits(max_connections=config.max_connections),
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise InputError(_bad_base_url(config.base_url, exc)) from exc

    @property
    def throttled(self) -> int:
        """Requests answered 429 so far."""
        return self.rate.throttled

    def in_flight(self) -> int:
        return self.latency.in_flight(
            self.bucket.rate, ceiling=self.config.max_in_flight, ready=self.bucket.ready()
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _exchange(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str] | None
    ) -> tuple[int, float, httpx.Response]:
        """One request, paced: a slot (one of ``max_connections``: no token is taken for a
        request that would wait for a connection), then a token, then the exchange; the bucket
        is told when it is answered, or fails, so that it keeps room in the server's bucket for
        it until then (:mod:`~segsync.destinations.pacing`). Returns the token's ticket, when
        the request left, and the response."""
        async with self._slots:
            ticket = await self.rate.acquire()
            try:
                self.requests_made += 1
                started = self.config.clock()
                response = await self._send(method, path, content, headers)
            finally:
                self.bucket.answered()
            return ticket, started, response

    async def _send(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str] | None
    ) -> httpx.Response:
        """One request, its answer read whole. It is made by httpx's client (the base URL, the
        key, the timeouts) and handed straight to the client's transport: the layers of
        ``AsyncClient.send`` around it — authentication, redirects, cookies — are for features
        the API does not use (so no cookie an answer sets is sent back), and cost a third of
        httpx's CPU per request (a first run of 100k contacts: 4 % less engine time,
        docs/design.md "The engine against its floor", its nineteenth round). Where the
        environment names a proxy, httpx's client sends it: it chooses the transport then."""
        if self._transport is None:
            return await self._http.request(method, path, content=content, headers=headers)
        request = self._http.build_request(method, path, content=content, headers=headers)
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        route: str,
        body: Any = None,
        idempotent: bool = True,
        max_attempts: int | None = None,
    ) -> Reply:
        """Send one API call, paced by the bucket, retried while it fails transiently.

        ``route`` names the endpoint in messages. A non-idempotent call is retried only when
        it surely did not take effect (429, connection refused); otherwise its transient failure
        is raised at once, for the caller to check state before trying again. A 429 uses up an
        attempt only once the rate is at its floor, or when the caller set ``max_attempts`` (a
        call that must answer quickly, like Connect).
        """
        limit = min(max_attempts or self.policy.max_attempts, self.policy.max_attempts)
        patient = max_attempts is None
        content = None if body is None else orjson.dumps(body, default=str)
        headers = {"Content-Type": "application/json"} if content is not None else None
        ambiguous = False
        attempt = 0  # the attempts that count against ``limit``
        tries = 0  # every request of this call
        while True:
            attempt += 1
            tries += 1
            try:
                ticket, started, response = await self._exchange(method, path, content, headers)
            except httpx.UnsupportedProtocol as exc:
                raise InputError(_bad_base_url(self.config.base_url, exc)) from exc
            except httpx.RequestError as exc:
                unsent = isinstance(exc, _UNSENT)
                failure: RetriableError = RetriableError(
                    f"could not reach Autopilot at {self.config.base_url} for {method} {route}: "
                    f"{_transport_problem(exc, self.config.api_key)}"
                )
                retry_after = None
                if not unsent:
                    ambiguous = True
                if not idempotent and not unsent:
                    raise failure from exc
            else:
                self.latency.observe(self.config.clock() - started)
                reply = _reply(response, tries, ambiguous)
                status = response.status_code
                if status == 401:
                    raise AuthenticationFailed(
                        "the Autopilot API key was rejected (401); edit the connection and "
                        "press Connect"
                    )
                if status == 403:
                    raise AuthenticationFailed(
                        f"Autopilot refused this API key access to {method} {route} (403: "
                        f"{reply.message or 'Forbidden'}); check the key's permissions in "
                        "Autopilot, then edit the connection and press Connect"
                    )
                if not is_retriable_status(status):
                    self.rate.on_success()
                    return reply
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), now=self.config.wall_clock()
                )
                if status == 429:
                    lowered = self.rate.on_throttled(ticket)
                    self.bucket.pause(min(retry_after or 0.0, MAX_RETRY_AFTER))
                    if patient and (lowered or not self.rate.at_floor):
                        log.info(
                            "%s %s answered 429: sending again at %.3g r/s",
                            method,
                            route,
                            self.rate.rate,
                        )
                        attempt -= 1  # paced by the lowered rate; no attempt used up
                        continue
                    failure = RateLimited(
                        _throttled_message(self.rate, method, route, reply),
                        retry_after=retry_after,
                    )
                else:
                    ambiguous = True
                    failure = RetriableError(
                        f"Autopilot answered {status} to {method} {route}: "
                        f"{reply.message or response.reason_phrase}",
                        retry_after=retry_after,
                    )
                    if not idempotent:
                        raise failure
            if attempt >= limit:
                raise type(failure)(
                    f"{failure.message} (gave up after {attempt} attempts"
                    + (f", {tries} requests in all)" if tries > attempt else ")"),
                    retry_after=failure.retry_after,
                )
            delay = self.policy.delay(attempt, retry_after)
            log.info("retrying %s %s in %.2fs after: %s", method, route, delay, failure.message)
            await self.config.sleep(delay)

    # --- endpoints -----------------------------------------------------------------------

    async def account(self, *, max_attempts: int | None = None) -> Reply:
        return await self.request("GET", "/account", route="/account", max_attempts=max_attempts)

    async def lists(self) -> Reply:
        return await self.request("GET", "/lists", route="/lists")

    async def create_list(self, name: str) -> Reply:
        """Not idempotent (duplicate titles are allowed): transient failures are raised."""
        return await self.request(
            "POST", "/list", route="/list", body={"name": name}, idempotent=False
        )

    async def upsert_contacts(self, contacts: list[dict[str, Any]]) -> Reply:
        body = {"contacts": contacts}
        return await self.request("POST", "/contacts", route="/contacts", body=body)

    async def get_contact(self, email: str) -> Reply:
        path = f"/contact/{contact_ref(email)}"
        return await self.request("GET", path, route="/contact/{contact}")

    async def delete_contact(self, email: str) -> Reply:
        path = f"/contact/{contact_ref(email)}"
        return await self.request("DELETE", path, route="/contact/{contact}")

    async def add_to_list(self, list_id: str, email: str) -> Reply:
        path = f"/list/{quote(list_id, safe='')}/contact/{contact_ref(email)}"
        return await self.request("POST", path, route="/list/{list_id}/contact/{contact}")

    async def remove_from_list(self, list_id: str, email: str) -> Reply:
        path = f"/list/{quote(list_id, safe='')}/contact/{contact_ref(email)}"
        return await self.request("DELETE", path, route="/list/{list_id}/contact/{contact}")

    async def list_contacts_page(self, list_id: str, bookmark: str | None) -> Reply:
        path = f"/list/{quote(list_id, safe='')}/contacts"
        if bookmark:
            path += f"/{quote(bookmark, safe='')}"
        return await self.request("GET", path, route="/list/{list_id}/contacts[/{bookmark}]")


def _reply(response: httpx.Response, attempt: int, ambiguous: bool) -> Reply:
    data: Any = None
    if response.content:
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
    message = ""
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message = data["message"]
    elif data is None and response.content:
        message = response.text.strip()[:300]
    return Reply(response.status_code, data, message, attempt, ambiguous)


def _throttled_message(rate: AdaptiveRate, method: str, route: str, reply: Reply) -> str:
    message = reply.message.rstrip(".") or "Too Many Requests"
    where = f"Autopilot kept answering 429 Too Many Requests to {method} {route}: {message}"
    if rate.at_floor:
        where += f", even once segsync had slowed down to {rate.rate:.3g} r/s (its floor)"
    return f"{where}; lower the connection's rate limit or ask Autopilot to raise the key's"


def _transport_problem(exc: httpx.RequestError, api_key: str) -> str:
    """What went wrong on the way, for people: the exception's kind and text, except that a
    protocol error about our own request (it may quote a header) says only its kind, and no
    text ever carries the key."""
    if isinstance(exc, httpx.LocalProtocolError):
        return f"{type(exc).__name__} (the request could not be sent as written)"
    text = str(exc)
    if api_key.strip() and api_key.strip() in text:
        text = "(details withheld: they quoted the request)"
    return clip(f"{type(exc).__name__} {text}".rstrip())


def _bad_base_url(base_url: str, exc: Exception) -> str:
    return (
        f"the connection's base URL {clip(base_url)!r} is not a usable http(s) URL "
        f"({clip(exc)}); "
        f"edit the connection (the default is {DEFAULT_BASE_URL})"
    )


def unexpected(reply: Reply, what: str) -> FatalError:
    """The error for an answer the contract does not allow (wrong base URL, API change)."""
    detail = reply.message or (json.dumps(reply.data)[:200] if reply.data is not None else "")
    status = f"{reply.status}: {detail}" if detail else str(reply.status)
    return FatalError(
        f"Autopilot answered {what} unexpectedly ({status}); check the connection's base URL"
    )
