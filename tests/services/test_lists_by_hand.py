"""Lists changed by hand in Autopilot between runs or during one: a deleted list is made again and
every member lands on it; a renamed one is kept and reported (the simulator over HTTP for the
changes by hand and for reading the lists back)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx

from segsync.destinations.base import ConnectionConfig
from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.simulator import RunningSimulator, by_hand
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.runs_support import (
    count,
    ctx,
    in_process,
    people,
    reset_stats,
    setup,
    sim,
    stats,
)

__all__ = ["ctx", "sim"]  # fixtures

LISTS = "GET /v1/lists"
UPSERT = "POST /v1/contacts"
CREATE = "POST /v1/list"


def by_title(sim: RunningSimulator) -> dict[str, list[str]]:
    """``GET /_sim/lists?members=1`` over HTTP: list title → sorted member emails."""
    answer = httpx.get(f"{sim.root_url}/_sim/lists", params={"members": 1}, timeout=10)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def list_id(sim: RunningSimulator, title: str) -> str:
    answer = httpx.get(f"{sim.root_url}/_sim/lists", timeout=10).json()
    [found] = [item["list_id"] for item in answer["lists"] if item["title"] == title]
    return str(found)


def emails(group: list[int]) -> list[str]:
    return sorted(f"p{i}@example.com" for i in group)


def test_a_list_deleted_by_hand_is_made_again_with_every_member(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    crowd = people(120, "a") + people(30, "ab", start=121) + people(20, "b", start=151)
    setup(ctx, sim, tmp_path, crowd, segments=("Seg A", "Seg B"))
    first = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert first.status is RunStatus.SUCCESSFUL
    old_id = list_id(sim, "Seg A")
    deleted = httpx.delete(f"{sim.root_url}/_sim/lists/{old_id}", timeout=10)
    assert deleted.json()["members"] == 150
    reset_stats(sim)

    again = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert again.status is RunStatus.SUCCESSFUL
    assert by_title(sim) == {
        "Seg A": emails(list(range(1, 151))),
        "Seg B": emails(list(range(121, 171))),
    }
    assert list_id(sim, "Seg A") != old_id
    seen = stats(sim)
    # the check, the lookup of the title before making it, the list, 150 contacts in 2 batches
    assert (count(seen, LISTS), count(seen, CREATE), count(seen, UPSERT)) == (2, 1, 2)
    assert seen["total"] == again.counts.requests == 5
    assert (again.counts.rejected, again.counts.added, again.counts.updated) == (0, 0, 0)
    assert any("'Seg A' was deleted in Autopilot" in w for w in again.warnings)
    with ctx.db.session() as session:
        export_id = ExportRepository(session).get_by_name("Newsletter").id
        memberships = SyncStateRepository(session).memberships(export_id)
    assert len(memberships) == 150 + 50
    reset_stats(sim)

    rerun = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert rerun.status is RunStatus.SUCCESSFUL
    assert stats(sim)["total"] == count(stats(sim), LISTS) == rerun.counts.requests == 1
    assert rerun.counts.unchanged == 170
    assert "nothing changed" in (rerun.message or "")
    assert rerun.warnings == []


def test_a_list_renamed_by_hand_is_kept_and_reported(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(10))
    runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    seg_a = list_id(sim, "Seg A")
    renamed = httpx.post(f"{sim.root_url}/_sim/lists/{seg_a}", json={"title": "Mine"}, timeout=10)
    assert renamed.status_code == 200
    reset_stats(sim)

    again = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert again.status is RunStatus.SUCCESSFUL
    assert stats(sim)["total"] == count(stats(sim), LISTS) == 1
    assert by_title(sim) == {"Mine": emails(list(range(1, 11)))}
    assert any("'Seg A' is titled 'Mine' in Autopilot" in w for w in again.warnings)


def test_a_dry_run_asks_autopilot_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(10))
    runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    reset_stats(sim)
    dry = runs.run_export(ctx, "Newsletter", dry_run=True, tune=in_process(sim))
    assert dry.status is RunStatus.SUCCESSFUL
    assert stats(sim)["total"] == 0


class DeletesTheListAfterOneBatch(httpx.AsyncBaseTransport):
    """The simulator in-process; once the first bulk upsert is answered, the list it carried
    is deleted as if by hand (every later batch finds it gone)."""

    def __init__(self, sim: RunningSimulator) -> None:
        self.sim = sim.simulator
        self.inner = httpx.ASGITransport(app=sim.simulator.app)
        self.landed: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        upsert = request.method == "POST" and request.url.path.endswith("/contacts")
        if upsert and response.status_code == 200 and not self.landed:
            sent = json.loads(request.content)["contacts"]
            self.landed = [contact["Email"] for contact in sent]
            by_hand.delete_list(self.sim.state, sent[0]["_autopilot_list"])
        return response


def test_a_list_deleted_while_sending_is_made_again_and_no_contact_is_refused(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(250))
    reset_stats(sim)  # the key check of Connect
    transport = DeletesTheListAfterOneBatch(sim)

    def tune(config: ConnectionConfig) -> ConnectionConfig:
        return dataclasses.replace(config, transport=transport)

    run = runs.run_export(ctx, "Newsletter", tune=tune)

    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert (run.counts.added, run.counts.rejected) == (250, 0)
    assert len(transport.landed) in (75, 100)  # one of 3 batches, on the list deleted after it
    everyone = emails(list(range(1, 251)))
    assert by_title(sim) == {"Seg A": sorted(set(everyone) - set(transport.landed))}
    assert any("deleted in Autopilot while this run sent to it" in w for w in run.warnings)
    seen = stats(sim)
    # the list, 3 batches (those in flight when it went are refused and sent again), and
    # the list again, after looking its title up once more
    refused = count(seen, UPSERT, "400")
    assert refused in (1, 2)  # batches then in flight: how many depends on the latency seen
    assert count(seen, UPSERT, "200") == 3
    assert (count(seen, CREATE), count(seen, LISTS)) == (2, 2)
    assert run.counts.requests == seen["total"] == 7 + refused
    reset_stats(sim)

    rerun = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert by_title(sim) == {"Seg A": everyone}  # the next run adds the first batch back
    assert (rerun.counts.added, rerun.counts.unchanged) == (0, 250)
    assert (count(stats(sim), LISTS), count(stats(sim), UPSERT)) == (1, 1)
