"""The run engine, verify and repair with an Ortto connection, against the Ortto simulator:
an export lands exactly (one audience per segment, named like lists), a rerun sends nothing,
changes send only the changes and the removals (Ortto: unsubscribing from the audience). The
connection is added and checked over HTTP; runs reach the simulator in-process (ASGI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.connections import NewConnection, add_connection, connection_id
from segsync.services.context import ServiceContext
from segsync.services.exports import DataMatching, ExportSettings, MappingLine, create_export
from segsync.services.exports import verify as verify_service
from segsync.services.runs.worker import follow_run
from segsync.simulator import RunningSimulator, SimulatorConfig, SimulatorHost
from tests.services.runs_support import (
    API_KEY,
    Person,
    count,
    create_segments,
    ctx,
    in_process,
    people,
    reset_stats,
    stats,
    write_profiles,
)

__all__ = ["ctx"]  # fixtures

MERGE = "POST /v1/person/merge"
SUBSCRIBE = "PUT /v1/audience/subscribe"
AUDIENCES = "POST /v1/audiences/get"
CREATE = "POST /v1/audiences/create"


@pytest.fixture
def ortto(simulator_host: SimulatorHost) -> RunningSimulator:
    config = SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=3, api="ortto")
    return simulator_host.serve(config)


def setup(ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, rows: list[Person]) -> None:
    write_profiles(ctx, tmp_path / "people.csv", rows)
    create_segments(ctx)
    new = NewConnection(
        "Ortto", type="ortto", api_key=API_KEY, base_url=sim.base_url, rate_limit=1000.0
    )
    add_connection(ctx, new, agree=True)
    matching = DataMatching(
        "Email", "FirstName", "LastName", [MappingLine("custom:string:Group", "Grp")]
    )
    settings = ExportSettings(
        name="Newsletter",
        connection_id=connection_id(ctx, "Ortto"),
        matching=matching,
        segments=["Seg A", "Seg B"],
        removal="mirror",
    )
    create_export(ctx, settings)


def audiences(sim: RunningSimulator) -> dict[str, list[str]]:
    """``GET /_sim/lists?members=1`` over HTTP: audience name → subscribed emails."""
    answer = httpx.get(f"{sim.root_url}/_sim/lists", params={"members": 1}, timeout=10)
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def person(sim: RunningSimulator, email: str) -> dict[str, Any]:
    [found] = [p for p in sim.simulator.contacts_snapshot() if p["fields"]["str::email"] == email]
    return found  # type: ignore[no-any-return]


def emails(rows: list[Person]) -> list[str]:
    return sorted(str(p.email) for p in rows)


def run(ctx: ServiceContext, sim: RunningSimulator) -> runs.RunRecord:
    record = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert record.status is RunStatus.SUCCESSFUL, record.message
    return record


def test_an_export_lands_exactly_a_rerun_sends_nothing_changes_send_only_changes(
    ctx: ServiceContext, ortto: RunningSimulator, tmp_path: Path
) -> None:
    a, ab, b = people(150, "a"), people(30, "ab", start=151), people(20, "b", start=181)
    setup(ctx, ortto, tmp_path, a + ab + b)
    reset_stats(ortto)

    first = run(ctx, ortto)

    assert audiences(ortto) == {"Seg A": emails(a + ab), "Seg B": emails(ab + b)}
    sample = person(ortto, "p151@example.com")["fields"]
    assert sample == {
        "str::email": "p151@example.com",
        "str::first": "First151",
        "str::last": "Last151",
        "str:cm:group": "ab",
    }
    assert first.counts.added == 200
    sent = stats(ortto)
    assert count(sent, MERGE) == 3  # 180 + 50 memberships in batches of 100, one merge each
    assert count(sent, CREATE) == 2
    assert first.counts.requests == sent["total"]
    reset_stats(ortto)

    again = run(ctx, ortto)

    assert (again.counts.added, again.counts.updated, again.counts.removed) == (0, 0, 0)
    assert count(stats(ortto), MERGE) == count(stats(ortto), SUBSCRIBE) == 0
    assert stats(ortto)["total"] == count(stats(ortto), AUDIENCES) == 1  # the lists check
    reset_stats(ortto)

    renamed = Person(1, "p1@example.com", "Renamed", "Last1", "a")
    moved = Person(2, "p2@example.com", "First2", "Last2", "b")  # leaves Seg A, joins Seg B
    newcomer = Person(999, "new@example.com", "New", "Comer", "a")
    # p3 is deleted from the data: leaves Seg A
    rest = [p for p in a if p.id not in (1, 2, 3)]
    write_profiles(ctx, tmp_path / "people.csv", [renamed, moved, newcomer, *rest, *ab, *b])

    third = run(ctx, ortto)

    assert audiences(ortto) == {
        "Seg A": emails([renamed, newcomer, *rest, *ab]),
        "Seg B": emails([moved, *ab, *b]),
    }
    assert person(ortto, "p3@example.com")["audiences"] == []  # unsubscribed, never deleted
    assert person(ortto, "p1@example.com")["fields"]["str::first"] == "Renamed"
    assert person(ortto, "p2@example.com")["fields"]["str:cm:group"] == "b"
    assert (third.counts.added, third.counts.updated, third.counts.removed) == (1, 2, 2)
    sent = stats(ortto)
    assert count(sent, MERGE) == 1  # p1's new name, p2 into Seg B, the newcomer: one batch
    # ... its two audiences: one subscribe each; p2 and p3 leave Seg A: one unsubscribe each
    assert count(sent, SUBSCRIBE) == 2 + 2
    assert sent["total"] == third.counts.requests == 1 + 1 + 4  # with the lists check


def test_verify_and_repair_read_the_audiences(
    ctx: ServiceContext, ortto: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, ortto, tmp_path, people(5, "ab"))
    run(ctx, ortto)
    state = ortto.simulator.state
    seg_a = next(a for a in state.audiences.values() if a.name == "Seg A")
    p2 = state.find("p2@example.com")
    assert p2 is not None
    seg_a.members[p2.person_id] = False  # unsubscribed from Seg A in Ortto's app
    reset_stats(ortto)

    checked = verify_service.verify_export(ctx, "Newsletter", tune=in_process(ortto))

    report = verify_service.verify_report(checked)
    assert report["exit_code"] == 1
    assert [entry["missing_emails"] for entry in report["lists"] if entry["missing_emails"]] == [
        ["p2@example.com"]
    ]
    assert count(stats(ortto), MERGE) == 0  # a verify changes nothing

    repaired = verify_service.verify_export(ctx, "Newsletter", repair=True, tune=in_process(ortto))

    assert verify_service.verify_report(repaired)["exit_code"] == 0
    assert audiences(ortto)["Seg A"] == [f"p{i}@example.com" for i in range(1, 6)]


def test_an_audience_deleted_by_hand_is_made_again(
    ctx: ServiceContext, ortto: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, ortto, tmp_path, people(4, "a"))
    run(ctx, ortto)
    [seg_a] = [a.audience_id for a in ortto.simulator.state.audiences.values() if a.name == "Seg A"]
    deleted = httpx.delete(f"{ortto.root_url}/_sim/lists/{seg_a}", timeout=10)
    assert deleted.status_code == 200

    again = run(ctx, ortto)

    assert audiences(ortto)["Seg A"] == [f"p{i}@example.com" for i in range(1, 5)]
    assert again.warnings


def test_a_key_for_another_account_is_noticed_by_the_next_run(
    ctx: ServiceContext,
    ortto: RunningSimulator,
    simulator_host: SimulatorHost,
    tmp_path: Path,
) -> None:
    setup(ctx, ortto, tmp_path, people(3, "ab"))
    run(ctx, ortto)
    other = simulator_host.serve(  # another account behind the same base URL and key
        SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=99, api="ortto")
    )

    again = run(ctx, other)

    everyone = [f"p{i}@example.com" for i in range(1, 4)]
    assert audiences(other) == {"Seg A": everyone, "Seg B": everyone}
    assert person(other, "p2@example.com")["fields"]["str::first"] == "First2"  # full payload
    assert again.counts.requests == stats(other)["total"]


def test_undo_on_ortto_puts_audiences_and_fields_back(
    ctx: ServiceContext, ortto: RunningSimulator, tmp_path: Path
) -> None:
    a, b = people(40, "a"), people(10, "b", start=41)
    setup(ctx, ortto, tmp_path, a + b)
    run(ctx, ortto)
    before_audiences = audiences(ortto)
    before = {p["fields"]["str::email"]: p["fields"] for p in ortto.simulator.contacts_snapshot()}
    renamed = Person(1, "p1@example.com", "Renamed", "Last1", "a")
    moved = Person(2, "p2@example.com", "First2", "Last2", "b")
    write_profiles(ctx, tmp_path / "people.csv", [renamed, moved, *a[3:], *b])  # p3 leaves
    changed = run(ctx, ortto)
    assert audiences(ortto) != before_audiences

    queued = runs.queue_undo(ctx, changed.id)
    undone = follow_run(ctx, queued.id, tune=in_process(ortto))

    assert undone.status is RunStatus.SUCCESSFUL, undone.message
    assert audiences(ortto) == before_audiences
    after = {p["fields"]["str::email"]: p["fields"] for p in ortto.simulator.contacts_snapshot()}
    assert after == before
