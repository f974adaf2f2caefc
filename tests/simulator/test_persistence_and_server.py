"""State survives a restart through the state file; a real loopback server works, alone or as
the host of one simulator after another."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from segsync.simulator import Simulator, SimulatorConfig, host_in_thread, serve_in_thread
from tests.simulator.conftest import client_for


async def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sim" / "state.json"
    config = SimulatorConfig(rate_limit=0, state_file=state_file, save_interval=0)
    first = Simulator(config)
    async with client_for(first) as http:
        list_id = (await http.post("/list", json={"name": "Kept"})).json()["list_id"]
        contact = {"Email": "k@x.org", "_autopilot_list": list_id, "custom": {"integer--Age": 3}}
        contact_id = (await http.post("/contact", json={"contact": contact})).json()["contact_id"]
    assert json.loads(state_file.read_text())["format"] == "segsync-simulator-state"
    assert [p.name for p in state_file.parent.iterdir()] == ["state.json"]  # no temp leftovers

    second = Simulator(config)
    async with client_for(second) as http:
        doc = (await http.get("/contact/k@x.org")).json()
        assert doc["contact_id"] == contact_id
        assert doc["lists"] == [list_id]
        assert doc["custom_fields"][0]["fieldType"] == "integer"
        assert (await http.get(f"/list/{list_id}/contact/k@x.org")).status_code == 200
        new_id = (await http.post("/contact", json={"contact": {"Email": "n@x.org"}})).json()
    assert new_id["contact_id"] != contact_id


def test_save_is_atomic_and_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    sim = Simulator(SimulatorConfig(state_file=state_file))
    sim.save_state()
    before = state_file.read_text()
    sim.state.custom_types["Bad"] = {1, 2}  # type: ignore[assignment]  # not JSON-serialisable
    with pytest.raises(TypeError):
        sim.save_state()
    assert state_file.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_real_loopback_server_serves_the_api_and_saves_on_shutdown(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    config = SimulatorConfig(rate_limit=0, state_file=state_file, save_interval=3600)
    with serve_in_thread(config) as running:
        assert running.base_url == running.root_url + "/v1"
        assert running.root_url.startswith("http://127.0.0.1:")
        with httpx.Client(
            base_url=running.base_url, headers={"autopilotapikey": "simulator-key"}
        ) as http:
            assert http.post("/contact", json={"contact": {"Email": "a@x.org"}}).status_code == 200
            http.post("/contact", json={"contact": {"Email": "b@x.org"}})
            assert http.get("/contact/b@x.org").json()["Email"] == "b@x.org"
        stats = httpx.get(running.root_url + "/_sim/stats").json()
        assert stats["requests"]["POST /v1/contact"] == {"200": 2}
        assert running.simulator.stats.total == 3
    saved = json.loads(state_file.read_text())
    assert [c["fields"]["Email"] for c in saved["contacts"]] == ["a@x.org", "b@x.org"]


def test_a_host_serves_one_fresh_simulator_after_another_on_one_port(tmp_path: Path) -> None:
    headers = {"autopilotapikey": "simulator-key"}
    with host_in_thread() as host:
        before = httpx.get(host.root_url + "/v1/account", headers=headers)
        assert before.status_code == 503
        first = host.serve(SimulatorConfig(rate_limit=0))
        assert first.base_url == host.root_url + "/v1"
        httpx.post(
            first.base_url + "/contact", json={"contact": {"Email": "a@x.org"}}, headers=headers
        )
        second = host.serve(Simulator(SimulatorConfig(rate_limit=0)))
        assert second.root_url == first.root_url
        assert httpx.get(second.base_url + "/contact/a@x.org", headers=headers).status_code == 404
        assert httpx.get(second.root_url + "/_sim/stats").json()["total"] == 1  # its own
        assert [c["Email"] for c in first.simulator.contacts_snapshot()] == ["a@x.org"]
        with pytest.raises(ValueError, match="state file"):
            host.serve(SimulatorConfig(state_file=tmp_path / "state.json"))


async def test_seeded_ids_are_reproducible_and_never_reused_after_reset() -> None:
    ids: list[list[str]] = []
    for _ in range(2):
        sim = Simulator(SimulatorConfig(rate_limit=0, seed=42))
        async with client_for(sim) as http:
            first = (await http.post("/contact", json={"contact": {"Email": "a@x.org"}})).json()
            sim.reset()
            again = (await http.post("/contact", json={"contact": {"Email": "a@x.org"}})).json()
        ids.append([first["contact_id"], again["contact_id"]])
    assert ids[0] == ids[1]
    assert ids[0][0] != ids[0][1]


def test_unreadable_state_file_is_reported_with_its_path(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(str(state_file))):
        Simulator(SimulatorConfig(state_file=state_file))
