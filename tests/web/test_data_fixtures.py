"""Shared set-up for the Data-side web tests (profiles, segments, a simulator connection, an
export), made through the real services. This module has no tests; use its fixtures with
``from tests.web.test_data_fixtures import data_web_fixture, sim_fixture  # noqa: F401``."""

from __future__ import annotations

import json

import pytest

from segsync.services import connections, exports, profiles, segments
from segsync.services.context import ServiceContext
from segsync.simulator import RunningSimulator, SimulatorConfig, SimulatorHost
from tests.web.conftest import WebHarness

API_KEY = "k-web-0123456789abcdef"
PEOPLE = (
    ("1", "ann@example.com", "Ann", "Lee", "Lisbon", "10"),
    ("2", "bob@example.com", "Bob", "Ray", "Lisbon", "20"),
    ("3", "cid@example.com", "Cid", "Poe", "Porto", "30"),
    ("4", "not-an-email", "Dee", "Fox", "Lisbon", "40"),
    ("5", "eve@example.com", "Eve", "Orr", "Faro", "50"),
)


def definition(name: str, city: str) -> str:
    return json.dumps(
        {
            "name": name,
            "rules": [
                {"conditions": {"all": [{"attribute": "City", "op": "equals", "value": city}]}}
            ],
        }
    )


def setup_profiles(web: WebHarness) -> None:
    """Import the people as the profile table and make segments "Lisbon" and "Porto"."""
    ctx = web.ctx
    path = web.settings.data_dir / "people.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id,Email,FirstName,LastName,City,Score"] + [",".join(p) for p in PEOPLE]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        profiles.import_profiles(ctx, path, "people", key="id", profile=True)
        segments.create_segment(ctx, definition("Lisbon", "Lisbon"), "json")
        segments.create_segment(ctx, definition("Porto", "Porto"), "json")
    finally:
        release(web, ctx)


def release(web: WebHarness, ctx: ServiceContext) -> None:
    web.app.state.runtime.release(ctx)


def add_connection(
    web: WebHarness, name: str, base_url: str, *, shared: bool, contract_limit: int = 100_000
) -> None:
    new = connections.NewConnection(
        name,
        type="autopilot",
        api_key=API_KEY,
        base_url=base_url,
        rate_limit=1000.0,
        contract_limit=contract_limit,
        share_with_contributors=shared,
    )
    connections.add_connection(web.ctx, new, agree=True)


def add_export(web: WebHarness, name: str, connection: str, segs: tuple[str, ...]) -> None:
    ctx = web.ctx
    try:
        matching = exports.DataMatching("Email", first_name="FirstName")
        connection_id = connections.connection_id(ctx, connection)
        exports.create_export(
            ctx, exports.ExportSettings(name, connection_id, matching, list(segs))
        )
    finally:
        release(web, ctx)


@pytest.fixture(name="sim")
def sim_fixture(simulator_host: SimulatorHost) -> RunningSimulator:
    """A fresh simulator behind the session's loopback server."""
    return simulator_host.serve(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=3))


@pytest.fixture(name="data_web")
def data_web_fixture(web: WebHarness, sim: RunningSimulator) -> WebHarness:
    """``web`` with people, segments "Lisbon" and "Porto", connections "Shared" (shared with
    contributors) and "Private" (administrators only) on the simulator, and exports "News"
    (Shared; Lisbon) and "Secret" (Private; Porto)."""
    setup_profiles(web)
    add_connection(web, "Shared", sim.base_url, shared=True)
    add_connection(web, "Private", sim.base_url, shared=False)
    add_export(web, "News", "Shared", ("Lisbon",))
    add_export(web, "Secret", "Private", ("Porto",))
    return web
