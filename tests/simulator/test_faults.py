"""Fault switches (in-process and via POST /_sim/faults), the rate limit, stats and reset."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from segsync.simulator import Simulator, SimulatorConfig, serve_in_thread
from tests.simulator.conftest import KEY, FakeClock, client_for


async def test_fail_next_answers_500_then_recovers(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.fail_next(2)
    statuses = [(await client.get("/account")).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


async def test_throttle_next_answers_429_whatever_the_rate_then_recovers(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.throttle_next(2)
    first, second, third = [await client.get("/account") for _ in range(3)]
    assert [r.status_code for r in (first, second, third)] == [429, 429, 200]
    assert first.json() == {
        "error": "Too Many Requests",
        "message": "Too many requests (simulated fault).",
    }
    assert "retry-after" not in first.headers
    sim.faults.set_retry_after(3)
    sim.faults.throttle_next(1)
    limited = await client.post("/contact", json={"contact": {"Email": "t@x.org"}})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert (await client.get("/contact/t@x.org")).status_code == 404  # nothing was stored
    assert sim.stats.snapshot()["throttled"] == 3
    assert sim.faults.snapshot()["throttle_next"] == 0


async def test_throttle_next_needs_a_valid_key_first(sim: Simulator) -> None:
    sim.faults.throttle_next(1)
    async with client_for(sim, "wrong") as wrong, client_for(sim) as right:
        assert (await wrong.get("/account")).status_code == 401  # auth comes before it
        assert (await right.get("/account")).status_code == 429
        assert (await right.get("/account")).status_code == 200


async def test_hold_after_writes_lets_n_writes_through_then_holds_until_released(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.hold_after_writes(1)
    assert (await client.get("/account")).status_code == 200  # reads do not count
    assert (await client.post("/list", json={"name": "L"})).status_code == 200
    held = [
        asyncio.create_task(client.get("/account")),
        asyncio.create_task(client.post("/contact", json={"contact": {"Email": "h@x.org"}})),
    ]
    for _ in range(1000):  # let both tasks reach the door; no clock involved
        if sim.faults.hold.held == 2:
            break
        await asyncio.sleep(0)
    assert sim.faults.hold.held == 2
    assert sim.faults.snapshot()["held"] == 2
    assert not any(task.done() for task in held)
    assert sim.contacts_snapshot() == []  # the held write has not happened

    sim.faults.release()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
    assert [c["Email"] for c in sim.contacts_snapshot()] == ["h@x.org"]
    assert sim.faults.snapshot()["hold_after_writes"] is None
    assert (await client.get("/account")).status_code == 200  # no longer holding


def test_a_test_thread_waits_for_requests_held_by_a_simulator_in_another_thread() -> None:
    config = SimulatorConfig(rate_limit=0, hold_after_writes=0)
    with serve_in_thread(config) as running:
        headers = {"autopilotapikey": KEY}
        answers: list[int] = []

        def call() -> None:
            answers.append(httpx.get(running.base_url + "/account", headers=headers).status_code)

        caller = threading.Thread(target=call)
        caller.start()
        assert running.simulator.faults.hold.wait_for_held(1, timeout=30)
        assert answers == []
        view = httpx.post(running.root_url + "/_sim/faults", json={"hold_after_writes": None})
        assert view.json()["held"] == 0
        caller.join(timeout=30)
        assert answers == [200]


async def test_timeout_next_writes_commits_then_answers_408(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.timeout_next_writes(1)
    assert (await client.get("/contacts")).status_code == 200  # reads do not use it up
    response = await client.post("/contact", json={"contact": {"Email": "t@x.org"}})
    assert response.status_code == 408
    assert response.json()["error"] == "Request Timeout"
    assert (await client.get("/contact/t@x.org")).status_code == 200
    second = await client.post("/contact", json={"contact": {"Email": "t2@x.org"}})
    assert second.status_code == 200


async def test_rejected_email_fails_the_whole_bulk_naming_each_bad_email(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.reject_emails(r"@bad\.example$")
    contacts = [{"Email": "a@bad.example"}, {"Email": "ok@x.org"}, {"Email": "B@bad.example"}]
    response = await client.post("/contacts", json={"contacts": contacts})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Bad Request",
        "message": "Rejected email address(es): a@bad.example, B@bad.example",
    }
    assert (await client.get("/contact/ok@x.org")).status_code == 404
    single = await client.post("/contact", json={"contact": {"Email": "z@bad.example"}})
    assert single.status_code == 400
    assert single.json()["message"] == "Rejected email address(es): z@bad.example"


async def test_revoked_key_gets_401_until_restored(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.faults.revoke_key("simulator-key")
    revoked = await client.get("/account")
    assert revoked.status_code == 401
    assert revoked.json()["message"] == "Provided autopilotapikey not valid."
    sim.faults.restore_key("simulator-key")
    assert (await client.get("/account")).status_code == 200


async def test_latency_is_an_awaited_sleep_that_does_not_block_other_requests() -> None:
    slept: list[float] = []
    all_waiting = asyncio.Event()
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            all_waiting.set()
        await release.wait()

    sim = Simulator(SimulatorConfig(rate_limit=0, latency_ms=250, sleep=sleep))
    async with client_for(sim) as http:
        pending = [asyncio.create_task(http.get("/account")) for _ in range(3)]
        await asyncio.wait_for(all_waiting.wait(), 5)  # all three wait at once: none blocks
        assert not any(task.done() for task in pending)
        release.set()
        responses = await asyncio.gather(*pending)
    assert slept == [0.25, 0.25, 0.25]
    assert [r.status_code for r in responses] == [200, 200, 200]
    sim.faults.set_latency(0)
    async with client_for(sim) as http:
        assert (await http.get("/account")).status_code == 200
    assert len(slept) == 3


async def test_token_bucket_per_key_with_injected_clock() -> None:
    clock = FakeClock()
    sim = Simulator(SimulatorConfig(api_keys=["k1", "k2"], rate_limit=5, clock=clock))
    async with client_for(sim, "k1") as one, client_for(sim, "k2") as two:
        burst = [(await one.get("/account")).status_code for _ in range(6)]
        assert burst == [200] * 5 + [429]
        assert (await two.get("/account")).status_code == 200  # its own bucket
        limited = await one.get("/account")
        assert limited.json() == {
            "error": "Too Many Requests",
            "message": "You have exceeded your request rate of 5 r/s.",
        }
        assert "retry-after" not in limited.headers
        clock.advance(0.2)  # one token back
        assert [(await one.get("/account")).status_code for _ in range(2)] == [200, 429]
        clock.advance(10)  # refills to capacity, not beyond
        refilled = [(await one.get("/account")).status_code for _ in range(6)]
        assert refilled == [200] * 5 + [429]
    stats = sim.stats.snapshot()
    assert stats["throttled"] == 4
    assert stats["requests"]["GET /v1/account"] == {"200": 12, "429": 4}


async def test_retry_after_header_on_429() -> None:
    clock = FakeClock()
    sim = Simulator(SimulatorConfig(rate_limit=1, retry_after=1.5, clock=clock))
    async with client_for(sim) as http:
        assert (await http.get("/account")).status_code == 200
        limited = await http.get("/account")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1.5"


async def test_faults_through_the_inspection_endpoint(
    sim: Simulator, client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    response = await inspect.post(
        "/faults",
        json={
            "fail_next": 1,
            "timeout_next_writes": 1,
            "reject_email_pattern": "^spam",
            "revoke_key": "other",
            "retry_after": 2,
            "latency_ms": 0,
            "rate_limit": 0,
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "latency_ms": 0.0,
        "hold_after_writes": None,
        "held": 0,
        "throttle_next": 0,
        "fail_next": 1,
        "timeout_next_writes": 1,
        "reject_email_pattern": "^spam",
        "revoked_keys": ["other"],
        "retry_after": 2.0,
        "rate_limit": 0.0,
    }
    assert (await client.get("/account")).status_code == 500
    assert (
        await client.post("/contact", json={"contact": {"Email": "x@y.org"}})
    ).status_code == 408
    rejected = await client.post("/contact", json={"contact": {"Email": "spam@y.org"}})
    assert rejected.status_code == 400
    assert (await inspect.get("/faults")).json()["fail_next"] == 0


async def test_bad_fault_switches_are_400(inspect: httpx.AsyncClient) -> None:
    unknown = await inspect.post("/faults", json={"explode": True})
    assert unknown.status_code == 400
    assert "explode" in unknown.json()["message"]
    bad_regex = await inspect.post("/faults", json={"reject_email_pattern": "("})
    assert bad_regex.status_code == 400
    negative = await inspect.post("/faults", json={"fail_next": -1})
    assert negative.status_code == 400
    for switch in ("throttle_next", "hold_after_writes"):
        refused = await inspect.post("/faults", json={switch: -1})
        assert refused.status_code == 400
        assert switch in refused.json()["message"]
        assert (await inspect.post("/faults", json={switch: 1.5})).status_code == 400


async def test_throttle_and_hold_through_the_inspection_endpoint(
    sim: Simulator, client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    view = await inspect.post("/faults", json={"throttle_next": 1, "hold_after_writes": 0})
    assert view.json()["throttle_next"] == 1
    assert view.json()["hold_after_writes"] == 0
    pending = asyncio.create_task(client.get("/account"))
    for _ in range(1000):
        if sim.faults.hold.held:
            break
        await asyncio.sleep(0)
    assert (await inspect.get("/faults")).json()["held"] == 1
    released = await inspect.post("/faults", json={"hold_after_writes": None})
    assert released.json()["hold_after_writes"] is None
    assert (await pending).status_code == 429  # held, then throttled
    assert (await client.get("/account")).status_code == 200


async def test_stats_count_requests_by_method_path_template_and_status(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    list_id = (await client.post("/list", json={"name": "L"})).json()["list_id"]
    await client.post("/contact", json={"contact": {"Email": "s@x.org"}})
    await client.delete(f"/list/{list_id}/contact/s@x.org")
    await client.get("/contact/s@x.org")
    await client.get("/contact/none@x.org")
    stats = (await inspect.get("/stats")).json()
    assert stats == {
        "requests": {
            "POST /v1/list": {"200": 1},
            "POST /v1/contact": {"200": 1},
            "DELETE /v1/list/{list_id}/contact/{contact}": {"200": 1},
            "GET /v1/contact/{contact}": {"200": 1, "404": 1},
        },
        "total": 5,
        "throttled": 0,
    }


async def test_reset_forgets_state_stats_and_runtime_faults(
    sim: Simulator, client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    await client.post("/contact", json={"contact": {"Email": "r@x.org"}})
    await client.post("/list", json={"name": "L"})
    sim.faults.fail_next(5)
    sim.faults.throttle_next(5)
    sim.faults.hold_after_writes(0)
    assert (await inspect.post("/reset")).status_code == 200
    assert (await inspect.get("/stats")).json() == {"requests": {}, "total": 0, "throttled": 0}
    assert (await inspect.get("/contacts")).json() == {"contacts": []}
    assert (await client.get("/lists")).json() == {"lists": []}
    assert (await client.get("/account")).status_code == 200  # no fault left: none held


async def test_sim_contacts_lists_every_contact_with_its_lists(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    list_id = (await client.post("/list", json={"name": "L"})).json()["list_id"]
    await client.post(
        "/contacts",
        json={"contacts": [{"Email": "a@x.org", "_autopilot_list": list_id}, {"Email": "b@x.org"}]},
    )
    contacts = (await inspect.get("/contacts")).json()["contacts"]
    assert [(c["Email"], c["lists"]) for c in contacts] == [("a@x.org", [list_id]), ("b@x.org", [])]
    lists = (await inspect.get("/lists")).json()["lists"]
    assert lists == [{"list_id": list_id, "title": "L", "members": 1}]


def test_invalid_config_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        SimulatorConfig(rate_limit=-1)
    with pytest.raises(ValueError, match="reject_email_pattern"):
        SimulatorConfig(reject_email_pattern="(")
    with pytest.raises(ValueError, match="throttle_next"):
        SimulatorConfig(throttle_next=-1)
    with pytest.raises(ValueError, match="hold_after_writes"):
        SimulatorConfig(hold_after_writes=-1)
