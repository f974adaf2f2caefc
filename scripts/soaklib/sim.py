"""The Autopilot simulator of a soak: served on a loopback port from a thread of the soak's own
process, behind a thin ASGI wrapper that counts the ``/v1`` requests in flight and their
answers, and can be stopped and started again on the same port (dropped connections).

Everything the soak reads back (contacts, lists, memberships) goes through the simulator's
HTTP inspection endpoints, ``/_sim/...``."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import ExitStack
from typing import Any

import httpx

from segsync.simulator import SimulatorConfig, create_simulator, serve_app_in_thread

API_KEY = "soak-0123456789abcdef"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Counting:
    """ASGI wrapper: how many ``/v1`` writes are in flight now, and every answer by status."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.in_flight = 0
        self.writes_started = 0
        self.statuses: Counter[int] = Counter()
        self.bad_requests: list[str] = []  # the first few 400 answers, as sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/v1"):
            await self.app(scope, receive, send)
            return
        write = scope["method"] in WRITES
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            elif status == [400] and len(self.bad_requests) < 5:
                body = bytes(message.get("body", b"")).decode(errors="replace")
                self.bad_requests.append(f"{scope['method']} {path}: {body[:200]}")
            await send(message)

        with self.lock:
            self.in_flight += write
            self.writes_started += write
        try:
            await self.app(scope, receive, watch)
        finally:
            with self.lock:
                self.in_flight -= write
                code = status[0] if status else 0
                self.statuses[code] += 1

    def requests(self) -> int:
        with self.lock:
            return sum(self.statuses.values())


class SoakSimulator:
    """The simulator, its counting wrapper and its server; :meth:`restart` drops every
    connection (the server stops, stays down for ``gap`` seconds, and listens again on the
    same port, keeping its state)."""

    def __init__(
        self, seed: int, *, latency_ms: float = 0.0, rate_limit: float = 0.0, api: str = "autopilot"
    ) -> None:
        self.api = api
        self.simulator = create_simulator(
            SimulatorConfig(api_keys=[API_KEY], rate_limit=rate_limit, seed=seed, api=api)
        )
        self.simulator.faults.set_latency(latency_ms)
        self.counting = Counting(self.simulator.app)
        self._stack = ExitStack()
        self.root_url = self._stack.enter_context(serve_app_in_thread(self.counting))
        self.port = int(self.root_url.rsplit(":", 1)[1])
        self.http = httpx.Client(base_url=self.root_url, timeout=30.0)

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def faults(self) -> Any:
        return self.simulator.faults

    def restart(self, gap: float) -> None:
        self.simulator.faults.release()
        self._stack.close()
        time.sleep(gap)  # the outage itself: connections are refused meanwhile
        self._stack = ExitStack()
        self.root_url = self._stack.enter_context(
            serve_app_in_thread(self.counting, port=self.port)
        )

    def set_faults(self, **switches: Any) -> None:
        """``POST /_sim/faults``: only the switches given change."""
        self.http.post("/_sim/faults", json=switches).raise_for_status()

    def answers(self, *, accepted: bool) -> dict[str, int]:
        """``/_sim/stats`` by route and status: the 2xx answers (``accepted``), or the others."""
        reply = self.http.get("/_sim/stats")
        reply.raise_for_status()
        routes: dict[str, dict[str, int]] = reply.json()["requests"]
        return {
            f"{route} {status}": n
            for route, by_status in sorted(routes.items())
            for status, n in sorted(by_status.items())
            if status.startswith("2") == accepted
        }

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact in Autopilot's read shape (an Ortto person is read into it)."""
        reply = self.http.get("/_sim/contacts")
        reply.raise_for_status()
        found = list(reply.json()["contacts"])
        return found if self.api != "ortto" else [_as_contact(person) for person in found]

    def lists(self) -> list[dict[str, Any]]:
        reply = self.http.get("/_sim/lists")
        reply.raise_for_status()
        return list(reply.json()["lists"])

    def delete_list(self, list_id: str) -> bool:
        """Delete a list by hand (``DELETE /_sim/lists/{id}``); ``False`` when this simulator
        has no such endpoint."""
        reply = self.http.delete(f"/_sim/lists/{list_id}")
        if reply.status_code == 404 and "inspection endpoint" in reply.text:
            return False
        reply.raise_for_status()
        return True

    def close(self) -> None:
        self.simulator.faults.release()
        self.http.close()
        self._stack.close()


def _as_contact(person: dict[str, Any]) -> dict[str, Any]:
    """An Ortto person (``/_sim/contacts``) in the Autopilot contact shape the checks read: the
    email, the names, the custom Tier and the audiences it is subscribed to as its lists."""
    fields = person["fields"]
    tier = fields.get("str:cm:tier")
    return {
        "Email": fields["str::email"],
        "FirstName": fields.get("str::first"),
        "LastName": fields.get("str::last"),
        "lists": person["audiences"],
        "custom_fields": [] if tier is None else [{"kind": "Tier", "value": tier}],
    }
