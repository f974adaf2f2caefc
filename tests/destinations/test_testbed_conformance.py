"""The in-repo test destination, added the way docs/destinations.md says every destination is:
one package, one registry line, and this file. It passes the conformance kit, the connection
form, the CLI and the API take it through the registry, and nothing else names it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segsync.cli import app as cli_app
from segsync.destinations.base import ConnectionConfig, Destination
from segsync.destinations.registry import destination_types
from segsync.destinations.testbed import (
    TestbedAccount,
    TestbedDestination,
    close_account,
    open_account,
)
from segsync.services import profiles, runs
from segsync.services.context import open_context
from segsync.settings import Settings
from segsync.simulator import SimulatorConfig, serve_in_thread
from segsync.testing.conformance import ConformanceHarness, DestinationConformance
from segsync.web.app import create_app
from tests.web.conftest import Clock, WebHarness

KEY = "tb-key-0123456789"
ROOT = Path(__file__).resolve().parents[2]
_accounts = itertools.count(1)


def new_account(label: str) -> TestbedAccount:
    return open_account(f"https://testbed.invalid/{label}-{next(_accounts)}", KEY)


class TestbedHarness(ConformanceHarness):
    __test__ = False  # a harness, not a test class

    def __init__(self) -> None:
        self.account = new_account("conformance")

    def destination(self, *, wrong_key: bool = False) -> Destination:
        key = "not-the-key" if wrong_key else KEY
        return TestbedDestination(ConnectionConfig(self.account.base_url, key, 1000.0))

    def refuse(self, email: str) -> None:
        self.account.refuse(email)

    def list_titles(self) -> list[str]:
        return [item.title for item in self.account.lists.values()]

    def members(self, list_id: str) -> set[str]:
        return set(self.account.lists[list_id].members)

    def has_contact(self, email: str) -> bool:
        return email.lower() in self.account.contacts

    def sent_records(self) -> list[Mapping[str, Any]]:
        return list(self.account.received)

    def delete_list(self, list_id: str) -> None:
        self.account.delete_list(list_id)

    def close(self) -> None:
        close_account(self.account.base_url)


class TestTestbedConformance(DestinationConformance):
    def harness(self) -> ConformanceHarness:
        return TestbedHarness()


# --- the recipe holds: nothing else names it ---------------------------------------------

ALLOWED = {
    "src/segsync/destinations/registry.py",
    "tests/destinations/test_testbed_conformance.py",
    "docs/destinations.md",
}
TEXT = {".py", ".md", ".html", ".js", ".css", ".toml", ".yaml", ".yml", ".txt", ".cfg", ".ini"}


def test_only_its_package_the_registry_this_file_and_the_recipe_name_it() -> None:
    naming = []
    for top in ("src", "tests", "docs"):
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix not in TEXT or "__pycache__" in rel or not path.is_file():
                continue
            if rel in ALLOWED or rel.startswith("src/segsync/destinations/testbed/"):
                continue
            if re.search("testbed", path.read_text(errors="replace"), re.IGNORECASE):
                naming.append(rel)
    assert naming == [], "a destination is one package, one registry line and one test file"


# --- users never see it, but the forms, the CLI and the API take it when named ------------


def test_it_is_registered_but_not_listed() -> None:
    assert "testbed" in destination_types()
    assert "testbed" not in destination_types(listed_only=True)


@pytest.fixture
def web(settings: Settings) -> Iterator[WebHarness]:
    harness = WebHarness(create_app(settings, now=Clock()), Clock(), settings)
    yield harness
    for client in harness.clients:
        client.close()
    harness.app.state.runtime.close()


@pytest.fixture
def account() -> Iterator[TestbedAccount]:
    made = new_account("web")
    yield made
    close_account(made.base_url)


SEGMENT = {
    "name": "All",
    "rules": [{"conditions": {"all": [{"attribute": "Email", "op": "is_not_empty"}]}}],
}


def _connect(web: WebHarness, base_url: str, name: str = "Bench") -> dict[str, Any]:
    body = {"type": "testbed", "name": name, "api_key": KEY, "base_url": base_url, "agree": True}
    headers = web.bearer(web.api_token("administrator"))
    created = web.api.post("/api/v1/connections", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def test_the_api_takes_the_type_and_its_statement_from_the_registry(
    web: WebHarness, account: TestbedAccount
) -> None:
    headers = web.bearer(web.api_token("administrator"))
    api = web.api
    listed = api.get("/api/v1/connections/types", headers=headers).json()
    assert "testbed" not in {t["type"] for t in listed}
    consent = api.get("/api/v1/connections/consent?type=testbed", headers=headers)
    statement = consent.json()["statement"]
    assert "to Testbed, a third-party service" in statement
    body = {"type": "testbed", "name": "Bench", "api_key": KEY, "base_url": account.base_url}
    refused = api.post("/api/v1/connections", json=body, headers=headers)
    assert refused.status_code == 422
    assert statement in refused.json()["message"]
    wrong = {**body, "api_key": "nope", "agree": True}
    rejected = api.post("/api/v1/connections", json=wrong, headers=headers)
    assert rejected.status_code == 422
    assert "Testbed API key was rejected" in rejected.json()["message"]
    connection = _connect(web, account.base_url)
    assert (connection["type"], connection["rate_limit"]) == ("testbed", 50.0)
    assert connection["consent"]["statement"] == statement
    fields = api.get(f"/api/v1/connections/{connection['id']}/fields", headers=headers).json()
    assert (fields["destination"], fields["email"], fields["last_name"]) == (
        "Testbed",
        "email",
        None,
    )
    assert fields["standard"] == ["city", "visits"]
    assert fields["custom_types"] == ["string", "integer", "boolean"]


def test_exports_map_the_fields_of_their_connections_destination(
    web: WebHarness, account: TestbedAccount
) -> None:
    headers = web.bearer(web.api_token("administrator"))
    api = web.api
    connection = _connect(web, account.base_url)
    with open_context(web.settings) as ctx:
        profiles.load_sample(ctx, profiles=30, seed=1)
    assert api.post("/api/v1/segments", json=SEGMENT, headers=headers).status_code == 201
    export = {
        "name": "To the bench",
        "connection_id": connection["id"],
        "email": "Email",
        "first_name": "FirstName",
        "maps": [
            {"field": "City", "attribute": "City"},
            {"field": "custom:boolean:Subscribed Now", "attribute": "IsSubscribed"},
        ],
        "segments": ["All"],
    }
    saved = api.post("/api/v1/exports", json=export, headers=headers)
    assert saved.status_code == 201, saved.text
    assert saved.json()["destination"] == "Testbed"
    assert [m["field"] for m in saved.json()["mapping"]] == [
        "email",
        "first_name",
        "city",
        "custom:boolean:Subscribed Now",
    ]
    for field, message in (
        ("Company", "unknown Testbed field 'Company'"),
        ("custom:date:Born", "unknown type 'date'; use one of string, integer, boolean"),
        ("custom:string:a_b", "contains '_', which Testbed uses for spaces"),
        ("id", "'id' is the testbed's own record id"),
    ):
        bad = {**export, "name": f"Bad {field}", "maps": [{"field": field, "attribute": "City"}]}
        response = api.post("/api/v1/exports", json=bad, headers=headers)
        assert response.status_code == 422, field
        assert message in response.json()["message"]
    last = {**export, "name": "Last", "maps": [], "last_name": "LastName"}
    response = api.post("/api/v1/exports", json=last, headers=headers)
    assert response.status_code == 422
    assert "Testbed has no last name field" in response.json()["message"]


def test_an_export_moves_only_to_a_destination_that_takes_its_fields(
    web: WebHarness, account: TestbedAccount
) -> None:
    headers = web.bearer(web.api_token("administrator"))
    api = web.api
    first = _connect(web, account.base_url)
    other = open_account(account.base_url + "-other", KEY)
    try:
        second = _connect(web, other.base_url, "Other bench")
    finally:
        close_account(other.base_url)
    with open_context(web.settings) as ctx:
        profiles.load_sample(ctx, profiles=10, seed=2)
    api.post("/api/v1/segments", json=SEGMENT, headers=headers)
    export = {
        "name": "Towns",
        "connection_id": first["id"],
        "email": "Email",
        "maps": [{"field": "city", "attribute": "City"}],
        "segments": ["All"],
    }
    saved = api.post("/api/v1/exports", json=export, headers=headers).json()
    with serve_in_thread(SimulatorConfig(api_keys=[KEY], rate_limit=0)) as simulator:
        body = {"name": "Autopilot", "api_key": KEY, "base_url": simulator.base_url}
        autopilot = api.post(
            "/api/v1/connections",
            json={**body, "type": "autopilot", "agree": True},
            headers=headers,
        ).json()
    url = f"/api/v1/exports/{saved['id']}"
    refused = api.patch(url, json={"connection_id": autopilot["id"]}, headers=headers)
    assert refused.status_code == 422
    assert "'Autopilot' cannot take this export's data matching" in refused.json()["message"]
    assert "unknown Autopilot field 'city'" in refused.json()["message"]
    api.post(f"{url}/detach", headers=headers)
    refused = api.post(f"{url}/attach", json={"connection_id": autopilot["id"]}, headers=headers)
    assert refused.status_code == 422
    moved = api.patch(url, json={"connection_id": second["id"]}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["connection_name"] == "Other bench"


def test_the_admin_form_is_drawn_from_its_settings(
    web: WebHarness, account: TestbedAccount
) -> None:
    admin = web.client_as("administrator")
    chooser = admin.get("/admin/connections/add").text
    assert "/admin/connections/add/testbed" not in chooser
    form = admin.get("/admin/connections/add/testbed")
    assert form.status_code == 200
    assert "Add Testbed connection" in form.text
    assert "to Testbed, a third-party service" in form.text
    assert 'placeholder="env:TESTBED_KEY"' in form.text
    assert 'placeholder="https://testbed.invalid/default"' in form.text
    assert 'placeholder="50"' in form.text
    fields = {"name": "From the form", "api_key": KEY, "base_url": account.base_url}
    page = "/admin/connections/add/testbed"
    saved = admin.post(page, data=web.form(admin, page, **fields, agree="true"))
    assert saved.status_code == 303, saved.text
    assert admin.get("/admin/connections/add/nowhere").status_code == 404


def test_the_cli_adds_it_by_its_type_name(tmp_path: Path, account: TestbedAccount) -> None:
    runner = CliRunner(env={"SEGSYNC_DATA_DIR": None, "SEGSYNC_SECRET_KEY": None, "TB_KEY": KEY})
    base = ["--data-dir", str(tmp_path / "data")]
    add = [*base, "connections", "add", "testbed", "--name", "CLI", "--api-key-env", "TB_KEY"]
    added = runner.invoke(cli_app, [*add, "--base-url", account.base_url, "--agree"])
    assert added.exit_code == 0, added.output
    assert "Testbed connection 'CLI'" in added.stdout


def test_a_run_packs_its_batch_size_and_a_dry_run_shows_its_payloads(
    web: WebHarness, account: TestbedAccount
) -> None:
    headers = web.bearer(web.api_token("administrator"))
    connection = _connect(web, account.base_url)
    with open_context(web.settings) as ctx:
        profiles.load_sample(ctx, profiles=80, seed=2)
    assert web.api.post("/api/v1/segments", json=SEGMENT, headers=headers).status_code == 201
    export = {"name": "Bench run", "connection_id": connection["id"], "email": "Email"}
    saved = web.api.post("/api/v1/exports", json={**export, "segments": ["All"]}, headers=headers)
    assert saved.status_code == 201, saved.text

    with open_context(web.settings) as ctx:
        dry = runs.run_export(ctx, "Bench run", dry_run=True)
        real = runs.run_export(ctx, "Bench run")

    contacts = real.counts.added
    assert contacts > 50
    assert dry.plan is not None
    assert dry.plan["batches"] == -(-contacts // 25)  # the destination's batch size, not 100
    (listed,) = dry.plan["lists"]
    sample = listed["samples"][0]
    assert set(sample) == {"email", "fields", "list"}  # its own serializer's shape
    assert sample["list"] == f"<new list for segment {listed['segment_id']}>"
    assert real.counts.requests == 1 + -(-contacts // 25)  # the list, then full batches
    assert len(account.received) == contacts
