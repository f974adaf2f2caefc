"""The fuzz suite's seeded installation: sample profiles (customers and orders), the segment
Gold, a connection to a simulator on loopback whose API key is the planted canary, an export and
a queued run, and one user with an API token per role. Shared by every fuzz test of a session
(each target checks the state it may touch before and after every refused input)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from segsync.services import connections, exports, segments, users
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.services.profiles import load_sample
from segsync.services.runs import queue
from segsync.settings import Settings
from segsync.simulator import SimulatorConfig, serve_in_thread
from segsync.web.app import create_app
from tests.conftest import fresh_settings
from tests.fuzz.tally import TALLIES, write_report

CANARY = "CANARYf7uzz"
API_KEY = f"sk-{CANARY}-0b7d44e1"
ROLES = ("administrator", "contributor", "viewer")
GOLD = {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"}
GOLD_DEFINITION = json.dumps({"name": "Gold", "rules": [{"conditions": {"all": [GOLD]}}]})


def _connect(ctx: ServiceContext, base_url: str) -> int:
    new = connections.NewConnection(
        "Simulator",
        type="autopilot",
        api_key=API_KEY,
        base_url=base_url,
        share_with_contributors=True,
    )
    return connections.add_connection(ctx, new, agree=True).id


@dataclass
class Seeded:
    app: FastAPI
    settings: Settings
    connection_id: int
    tokens: dict[str, str]
    simulator_url: str

    @property
    def db_file(self) -> Path:
        return self.settings.data_dir / "segsync.db"

    @property
    def profiles_file(self) -> Path:
        return self.settings.data_dir / "profiles.duckdb"

    def context(self, actor: Any = LOCAL_ADMIN) -> ServiceContext:
        return self.app.state.runtime.context(actor)  # type: ignore[no-any-return]

    def release(self, ctx: ServiceContext) -> None:
        self.app.state.runtime.release(ctx)

    def ensure_basics(self) -> None:
        """Make the connection and the segment Gold again if the API fuzz removed them (a
        200 to a DELETE is a fuzz input accepted, not a fault)."""
        ctx = self.context()
        try:
            if "Gold" not in {record.name for record in segments.list_segments(ctx)}:
                segments.create_segment(ctx, GOLD_DEFINITION)
            if self.connection_id not in {c.id for c in connections.list_connections(ctx)}:
                self.connection_id = _connect(ctx, self.simulator_url)
        finally:
            self.release(ctx)

    def token(self, role: str) -> str:
        """The role's fuzzing token, made again if the fuzz revoked it (a token that cannot
        revoke itself for good)."""
        ctx = self.context()
        try:
            users.authenticate_token(ctx, self.tokens[role])
        except Exception:
            actor = users.resolve_actor(ctx, f"{role}@example.com")
            self.tokens[role] = users.create_token(self.context(actor), "fuzz").token
        finally:
            self.release(ctx)
        return self.tokens[role]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    settings = fresh_settings(data_dir)
    with serve_in_thread(SimulatorConfig(api_keys=[API_KEY], rate_limit=0)) as simulator:
        app = create_app(settings)
        runtime = app.state.runtime
        ctx = runtime.context(LOCAL_ADMIN)
        load_sample(ctx, profiles=60, seed=5)
        segments.create_segment(ctx, GOLD_DEFINITION)
        segments.refresh_segments(ctx, ["Gold"])
        connection_id = _connect(ctx, simulator.base_url)
        matching = exports.DataMatching("Email")
        exports.create_export(
            ctx, exports.ExportSettings("Newsletter", connection_id, matching, ["Gold"])
        )
        queue.enqueue_run(ctx, "Newsletter")
        tokens = {}
        for role in ROLES:
            users.add_user(ctx, f"{role}@example.com", role, None)
            actor = users.resolve_actor(ctx, f"{role}@example.com")
            tokens[role] = users.create_token(runtime.context(actor), "fuzz").token
        runtime.release(ctx)
        yield Seeded(app, settings, connection_id, tokens, simulator.base_url)
        runtime.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if TALLIES:
        write_report()
