"""Ortto where connections appear: the API's types, the add form (its region select), Connect,
the API with a type's own settings, moving an Autopilot export to Ortto, and the CLI — all from
the registry and the capabilities, against the Ortto simulator over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segsync.cli import app as cli_app
from segsync.services import connections
from segsync.simulator import RunningSimulator, SimulatorConfig, SimulatorHost
from tests.web.conftest import WebHarness

KEY = "ortto-web-key-0123"


@pytest.fixture
def ortto(simulator_host: SimulatorHost) -> RunningSimulator:
    return simulator_host.serve(SimulatorConfig(api_keys=[KEY], rate_limit=0, api="ortto"))


def _add(web: WebHarness, body: dict[str, Any]) -> Any:
    headers = web.bearer(web.api_token("administrator"))
    return web.api.post("/api/v1/connections", json=body, headers=headers)


def test_the_api_lists_ortto_with_its_region_and_adds_it(
    web: WebHarness, ortto: RunningSimulator
) -> None:
    headers = web.bearer(web.api_token("administrator"))
    types = {t["type"]: t for t in web.api.get("/api/v1/connections/types", headers=headers).json()}
    assert set(types) == {"autopilot", "ortto"}
    region = next(s for s in types["ortto"]["settings"] if s["name"] == "region")
    assert (region["kind"], region["choices"], region["sets"]) == (
        "choice",
        ["default", "eu", "au"],
        "base_url",
    )
    body = {"type": "ortto", "name": "Ortto", "api_key": KEY, "agree": True}
    wrong = _add(web, {**body, "settings": {"region": "mars"}})
    assert wrong.status_code == 422
    assert "data region 'mars' is not one of default, eu, au" in wrong.json()["message"]
    foreign = _add(web, {**body, "type": "autopilot", "settings": {"region": "eu"}})
    assert foreign.status_code == 422
    assert "Autopilot connections have no setting 'region'" in foreign.json()["message"]
    made = _add(web, {**body, "base_url": ortto.base_url, "settings": {"region": "eu"}})
    assert made.status_code == 201, made.text
    assert (made.json()["type"], made.json()["base_url"]) == ("ortto", ortto.base_url)
    assert made.json()["rate_limit"] == 10.0
    moved = web.api.patch(
        f"/api/v1/connections/{made.json()['id']}",
        json={"settings": {"region": "au"}},
        headers=headers,
    )
    assert moved.status_code == 422  # another host may be another account: agree again
    assert "agree" in moved.json()["message"]
    fields = web.api.get(f"/api/v1/connections/{made.json()['id']}/fields", headers=headers)
    assert (fields.json()["email"], fields.json()["first_name"]) == ("str::email", "str::first")
    assert fields.json()["custom_types"] == ["string", "integer", "boolean", "date"]


def test_the_add_form_offers_the_region_and_connect_uses_it(
    web: WebHarness, ortto: RunningSimulator
) -> None:
    admin = web.client_as("administrator")
    chooser = admin.get("/admin/connections/add").text
    assert "/admin/connections/add/ortto" in chooser
    form = admin.get("/admin/connections/add/ortto").text
    assert "Add Ortto connection" in form
    assert '<select id="region" name="region" data-setting>' in form
    assert 'placeholder="https://api.ap3api.com/v1"' in form
    token = web.form(admin, "/admin/connections/add/ortto")["csrf_token"]
    check = {"type": "ortto", "api_key": KEY, "base_url": ortto.base_url}
    good = admin.post("/admin/connections/check", json=check, headers={"X-CSRF-Token": token})
    assert good.json()["ok"] is True, good.json()
    bad = admin.post(
        "/admin/connections/check",
        json={**check, "settings": {"region": "mars"}},
        headers={"X-CSRF-Token": token},
    )
    assert bad.json()["health"] == "invalid_input"
    page = "/admin/connections/add/ortto"
    fields = {"name": "From the form", "api_key": KEY, "base_url": ortto.base_url, "region": ""}
    saved = admin.post(page, data=web.form(admin, page, **fields, agree="true", add_me="true"))
    assert saved.status_code == 303, saved.text
    [made] = [c for c in connections.list_connections(web.ctx) if c.name == "From the form"]
    assert made.type == "ortto"
    edit = admin.get(f"/admin/connections/{made.id}/edit").text
    assert '<option value="" selected>as the base URL says</option>' in edit


def test_the_cli_adds_ortto_with_a_region_option(tmp_path: Path, ortto: RunningSimulator) -> None:
    runner = CliRunner(env={"SEGSYNC_DATA_DIR": None, "SEGSYNC_SECRET_KEY": None, "OK": KEY})
    base = ["--data-dir", str(tmp_path / "data"), "connections"]
    add = [*base, "add", "ortto", "--name", "CLI", "--api-key-env", "OK", "--agree"]
    refused = runner.invoke(cli_app, [*add, "--region", "mars"])
    assert refused.exit_code == 2
    assert "data region 'mars' is not one of default, eu, au" in " ".join(refused.stderr.split())
    added = runner.invoke(cli_app, [*add, "--base-url", ortto.base_url, "--region=eu"])
    assert added.exit_code == 0, added.output
    assert "Ortto connection 'CLI'" in added.stdout
    again = runner.invoke(cli_app, [*base, "edit", "CLI", "--region", "au"])
    assert again.exit_code == 2
    assert "agree" in again.stderr
    shown = runner.invoke(cli_app, [*base, "show", "CLI"])
    assert ortto.base_url in shown.stdout
    helped = runner.invoke(cli_app, [*base, "add", "--help"])
    assert "--region default|eu|au" in " ".join(helped.stdout.split())
