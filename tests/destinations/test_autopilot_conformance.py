"""Autopilot passes the destination conformance kit, against its simulator in-process."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import ConnectionConfig, Destination
from segsync.simulator import Simulator, SimulatorConfig, by_hand
from segsync.testing.conformance import ConformanceHarness, DestinationConformance

KEY = "conformance-key"


class RecordingTransport(httpx.AsyncBaseTransport):
    """The simulator over ASGI, keeping every contact the client sends to ``POST /contacts``."""

    def __init__(self, simulator: Simulator) -> None:
        self.inner = httpx.ASGITransport(app=simulator.app)
        self.contacts: list[Mapping[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/contacts"):
            self.contacts.extend(json.loads(await request.aread())["contacts"])
        return await self.inner.handle_async_request(request)


class AutopilotHarness(ConformanceHarness):
    def __init__(self) -> None:
        self.simulator = Simulator(SimulatorConfig(api_keys=[KEY], rate_limit=0, seed=11))
        self.transport = RecordingTransport(self.simulator)
        self.refused: list[str] = []

    def destination(self, *, wrong_key: bool = False) -> Destination:
        config = ConnectionConfig(
            base_url="http://simulator.test/v1",
            api_key="not-the-key" if wrong_key else KEY,
            rate_limit=1000.0,
            transport=self.transport,
            max_attempts=2,
            backoff_base=0.001,
        )
        return AutopilotDestination(config)

    def refuse(self, email: str) -> None:
        self.refused.append(re.escape(email))
        self.simulator.faults.reject_emails(f"(?i)^({'|'.join(self.refused)})$")

    def list_titles(self) -> list[str]:
        return [item.title for item in self.simulator.state.lists.values()]

    def members(self, list_id: str) -> set[str]:
        state = self.simulator.state
        ids = state.lists[list_id].members.ids()
        return {state.contacts[i].email.lower() for i in ids}

    def has_contact(self, email: str) -> bool:
        return self.simulator.state.find(email) is not None

    def sent_records(self) -> list[Mapping[str, Any]]:
        return list(self.transport.contacts)

    def delete_list(self, list_id: str) -> None:
        assert by_hand.delete_list(self.simulator.state, list_id).status == 200


class TestAutopilotConformance(DestinationConformance):
    def harness(self) -> ConformanceHarness:
        return AutopilotHarness()
