"""The simulator as one raw ASGI app: ``/v1`` (the Autopilot API) and ``/_sim`` (inspection)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from segsync.simulator import by_hand
from segsync.simulator.config import SimulatorConfig
from segsync.simulator.contacts import render_contact
from segsync.simulator.endpoints import Endpoints, Reply, Route, error
from segsync.simulator.faults import Faults, RateLimiter, Stats
from segsync.simulator.state import SimulatorState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_KEY_HEADER = b"autopilotapikey"
JSON_HEADERS = [(b"content-type", b"application/json")]


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class Simulator:
    """A stand-in for the Autopilot v1 API, with fault switches and counters.

    ``app`` is the ASGI application; ``state`` the account (contacts, lists, custom fields);
    ``faults`` the switches (see :class:`~segsync.simulator.faults.Faults`); ``limiter`` the
    per-key token bucket; ``stats`` the request counters. Each ``/v1`` request goes through:
    added latency → ``hold_after_writes`` (waits while held) → API key check (400 missing, 401
    unknown or revoked) → ``throttle_next`` and the rate limit (429) → route (404 unknown
    endpoint) → ``fail_next`` (500) → the endpoint → ``timeout_next_writes`` (408 after a
    committed write). Requests to ``/_sim`` skip all of it and are not counted.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        cfg = self.config
        salt = uuid.uuid4() if cfg.seed is None else uuid.uuid5(uuid.NAMESPACE_OID, f"{cfg.seed}")
        self.state = self._new_state(salt)
        if cfg.state_file is not None and cfg.state_file.exists():
            self.state.load(cfg.state_file)
        self.api_keys = list(cfg.api_keys)
        self.faults = Faults()
        self._configure_faults()
        self.limiter = RateLimiter(cfg.rate_limit, cfg.clock)
        self.stats = Stats()
        self.endpoints = self._new_endpoints()
        self._dirty = False
        self._last_save = float("-inf")
        self._flusher: asyncio.Task[None] | None = None

    # -- what another API's simulator replaces (segsync.simulator.ortto) -----------------------

    api_name = "Autopilot"
    """The API this simulator stands in for, in messages."""
    key_header = API_KEY_HEADER
    """The request header that carries the API key (lower case)."""

    def _new_state(self, salt: uuid.UUID) -> Any:
        """The account's state: anything with ``clear()``, ``save(path)`` and ``load(path)``."""
        return SimulatorState(salt, self.config.wall_clock)

    def _new_endpoints(self) -> Any:
        """The ``/v1`` endpoints: anything with ``resolve(method, path) -> Route | None``."""
        return Endpoints(self.state, self.faults)

    def _error(self, status: int, message: str) -> Reply:
        """An error answer in the API's shape."""
        return error(status, message)

    def _key_problem(self, key: str) -> Reply | None:
        """The answer to a missing or unknown key, or None when the key is accepted."""
        if not key:
            return error(400, "No autopilotapikey header provided.")
        if key not in self.api_keys or key in self.faults.revoked_keys:
            return error(401, "Provided autopilotapikey not valid.")
        return None

    def _throttled(self, simulated: bool) -> Reply:
        """The 429 answer (``Retry-After`` added by the caller when switched on)."""
        return error(
            429,
            "Too many requests (simulated fault)."
            if simulated
            else f"You have exceeded your request rate of {self.limiter.rate:g} r/s.",
        )

    def lists_view(self) -> dict[str, Any]:
        """``GET /_sim/lists``: every list with its member count."""
        lists = [
            {"list_id": item.list_id, "title": item.title, "members": len(item.members)}
            for item in self.state.lists.values()
        ]
        return {"lists": lists}

    def lists_with_members(self) -> dict[str, list[str]]:
        """``GET /_sim/lists?members=1``: ``{"<title>": [emails, sorted]}``."""
        return by_hand.lists_with_members(self.state)

    def _by_hand(self, method: str, path: str, body: bytes) -> Reply | None:
        """A change made by hand below ``/_sim`` (None: ``path`` names none)."""
        return by_hand.route(self.state, method, path, body)

    def _configure_faults(self) -> None:
        cfg = self.config
        self.faults.configure(
            latency_ms=cfg.latency_ms,
            hold_after_writes=cfg.hold_after_writes,
            throttle_next=cfg.throttle_next,
            fail_next=cfg.fail_next,
            timeout_next_writes=cfg.timeout_next_writes,
            reject_email_pattern=cfg.reject_email_pattern,
            revoked_keys=cfg.revoked_keys,
            retry_after=cfg.retry_after,
        )

    # -- in-process controls ---------------------------------------------------------------

    def reset(self) -> None:
        """Forget every contact, list and custom field; zero the counters; faults as configured.

        Ids keep counting, so no id is ever handed out twice by one simulator.
        """
        self.state.clear()
        self._configure_faults()
        self.limiter.set_rate(self.config.rate_limit)
        self.stats.reset()
        self._mark_dirty()

    def save_state(self) -> None:
        """Write the state file now (no-op without ``state_file``)."""
        if self.config.state_file is not None:
            self.state.save(self.config.state_file)
        self._dirty = False
        self._last_save = time.monotonic()

    def _mark_dirty(self) -> None:
        if self.config.state_file is None:
            return
        self._dirty = True
        if time.monotonic() - self._last_save >= self.config.save_interval:
            self.save_state()

    def contacts_snapshot(self) -> list[dict[str, Any]]:
        """Every contact in its read shape (with ``lists``), in creation order."""
        state: SimulatorState = self.state
        types = state.custom_types
        return [render_contact(state.contacts[cid], types) for cid in state.everyone.ids()]

    # -- ASGI -------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        method: str = scope["method"]
        path: str = scope["path"]
        if path == "/v1" or path.startswith("/v1/"):
            reply = await self._api(method, path[3:], scope["headers"], body)
        elif path.startswith("/_sim/"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            reply = self._inspect(method, path[len("/_sim/") :].rstrip("/"), query, body)
        else:
            reply = self._error(404, f"No such endpoint: {method} {path}. The API lives under /v1.")
        await send_reply(send, reply)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.config.state_file is not None and self.config.save_interval > 0:
                    self._flusher = asyncio.create_task(self._flush_periodically())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._flusher
                if self._dirty:
                    self.save_state()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.save_interval)
            if self._dirty:
                self.save_state()

    async def _api(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Reply:
        route = self.endpoints.resolve(method, path)
        template = f"{method} /v1{route.template}" if route is not None else f"{method} <unmatched>"
        reply = await self._api_reply(method, route, headers, body)
        self.stats.record(template, reply.status)
        return reply

    async def _api_reply(
        self, method: str, route: Route | None, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Reply:
        if self.faults.latency_ms > 0:
            await self.config.sleep(self.faults.latency_ms / 1000)
        await self.faults.hold.enter(method in WRITE_METHODS)
        header = self.key_header
        key = next((value for name, value in headers if name == header), b"").decode("latin-1")
        refused = self._key_problem(key)
        if refused is not None:
            return refused
        throttled = self.faults.take_throttle()
        if throttled or not self.limiter.allow(key):
            reply = self._throttled(throttled)
            if self.faults.retry_after is not None:
                reply.headers.append((b"retry-after", f"{self.faults.retry_after:g}".encode()))
            return reply
        if route is None:
            return self._error(404, "No such endpoint.")
        if self.faults.take_failure():
            return self._error(500, "Internal server error (simulated fault).")
        reply = route.handler(route.params, body)
        if method in WRITE_METHODS and 200 <= reply.status < 300:
            self._mark_dirty()
            if self.faults.take_timeout():
                return self._error(
                    408, "The request timed out (simulated fault; the write was saved)."
                )
        return reply

    # -- /_sim ------------------------------------------------------------------------------

    def _inspect(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:
        if method == "GET" and path == "stats":
            return Reply(200, self.stats.snapshot())
        if method == "GET" and path == "contacts":
            return Reply(200, {"contacts": self.contacts_snapshot()})
        members = query.get("members", [""])[-1].lower() in ("1", "true", "yes")
        if method == "GET" and path == "lists" and members:
            return Reply(200, self.lists_with_members())
        if method == "GET" and path == "lists":
            return Reply(200, self.lists_view())
        if method == "POST" and path == "reset":
            self.reset()
            return Reply(200, {"reset": True})
        by_hand_reply = self._by_hand(method, path, body)
        if by_hand_reply is not None:
            if by_hand_reply.status < 300:
                self._mark_dirty()
            return by_hand_reply
        if method == "GET" and path == "faults":
            return Reply(200, self._faults_view())
        if method == "POST" and path == "faults":
            return self._set_faults(body)
        return error(404, f"No such inspection endpoint: {method} /_sim/{path}.")

    def _faults_view(self) -> dict[str, Any]:
        return {**self.faults.snapshot(), "rate_limit": self.limiter.rate}

    def _set_faults(self, body: bytes) -> Reply:
        try:
            changes = json.loads(body) if body else {}
        except ValueError:
            return error(400, "The request body is not valid JSON.")
        if not isinstance(changes, dict):
            return error(400, "The request body must be a JSON object of fault switches.")
        rate = changes.get("rate_limit")
        try:
            if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
                raise ValueError(f"rate_limit must be a number, not {rate!r}")
            self.faults.apply(changes)
            if rate is not None:
                self.limiter.set_rate(float(rate))
        except ValueError as err:
            return error(400, str(err))
        return Reply(200, self._faults_view())


async def send_reply(send: Send, reply: Reply) -> None:
    """Send ``reply`` as a complete HTTP response (JSON body when it has a payload)."""
    body = b"" if reply.payload is None else _dumps(reply.payload)
    headers = [*JSON_HEADERS, *reply.headers] if reply.payload is not None else list(reply.headers)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
