"""A first run sent while it is read (services/sync/stream.py), against the simulator over its
ASGI app with real SQLite and DuckDB files: it sends, counts and records what the planned run
sends, counts and records; it steps aside wherever it could not stand for it; and a run stopped
or failing halfway loses nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from segsync.destinations.autopilot.destination import AutopilotDestination
from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.services.privacy.erasure import forget
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync import stream_read
from segsync.services.sync.by_email import KEY
from segsync.services.sync.clean import MemberScan
from segsync.services.sync.engine import EngineParts
from segsync.services.sync.read import read_members
from segsync.services.sync.stream import FirstRun
from segsync.services.sync.stream_read import Reading
from segsync.services.sync.target import RunTarget
from segsync.simulator import RunningSimulator, SimulatorConfig, SimulatorHost
from segsync.storage.repositories.runs import RunRecord, RunRepository
from segsync.storage.repositories.sync import SyncStateRepository
from tests.services.runs_support import (
    API_KEY,
    Person,
    connect,
    contacts,
    count,
    create_segments,
    ctx,
    fast,
    in_process,
    list_members,
    make_export,
    people,
    reset_stats,
    setup,
    sim,
    stats,
    write_profiles,
)

__all__ = ["ctx", "sim"]  # fixtures

BOTH = ("Seg A", "Seg B")


def crowd() -> list[Person]:
    """People in one segment, the other or both; emails shared by profiles (the lower id's
    values win, whichever is read first), padded and in capitals, invalid, empty, not ASCII;
    people in no segment."""
    return [
        *people(40, "a"),
        *people(15, "b", start=41),
        *people(10, "ab", start=56),
        Person(100, " P3@Example.COM ", "Dup", "Later", "b"),  # p3's email, a higher id
        Person(150, "  P200@EXAMPLE.com", "Won", "Lower", "b"),  # a lower id than 200's
        Person(200, "p200@example.com", "Lost", "Higher", "a"),
        Person(300, "not-an-email", group="a"),
        Person(301, None, group="ab"),
        Person(302, "a@b", group="b"),
        Person(400, "Ünïcode@Example.com", "Uni", "Code", "ab"),
        Person(500, "nobody@example.com", group=""),
    ]


class NeverRead:
    """A reader that fails the test if the run reads and plans instead of streaming."""

    def __call__(self, *args: Any) -> MemberScan:
        raise AssertionError("the first run was read and planned, not streamed")


class Counted:
    """The default reader, counting the runs that read and plan."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any) -> MemberScan:
        self.calls += 1
        return read_members(*args)


def _run(ctx: ServiceContext, sim: RunningSimulator, export: str, parts: EngineParts) -> RunRecord:
    claim = claim_run(ctx, enqueue_run(ctx, export).run.id)
    assert claim is not None
    return execute_claim(ctx, claim, tune=in_process(sim, fast), parts=parts)


def _state(ctx: ServiceContext, export_id: int) -> tuple[dict[str, str], set[tuple[int, str]]]:
    with ctx.db.session() as session:
        sync = SyncStateRepository(session)
        assert not sync.memberships(export_id, pending=True)  # nothing left unanswered
        return sync.hashes(export_id), sync.memberships(export_id)


def _rejects(ctx: ServiceContext, run_id: int) -> list[tuple[Any, ...]]:
    with ctx.db.session() as session:
        found = RunRepository(session).rejects(run_id)
    return sorted((r.kind, r.profile_id, r.email, r.reason) for r in found)


def _people(sim: RunningSimulator) -> dict[str, dict[str, Any]]:
    """Every contact's fields, without its lists (ids of another simulator: compared by title
    with list_members) and times."""
    kept = ("lists", "created_at", "updated_at", "createdAt", "updatedAt")
    return {
        email: {k: v for k, v in contact.items() if k not in kept}
        for email, contact in contacts(sim).items()
    }


def _no_stream_thread() -> bool:
    return not any(t.name == "segsync-first-run" for t in threading.enumerate())


@pytest.fixture
def second(simulator_host: SimulatorHost) -> RunningSimulator:
    return simulator_host.serve(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=7))


def test_a_streamed_first_run_sends_counts_and_records_what_a_planned_one_does(
    ctx: ServiceContext, sim: RunningSimulator, second: RunningSimulator, tmp_path: Path
) -> None:
    write_profiles(ctx, tmp_path / "people.csv", crowd())
    create_segments(ctx)
    connect(ctx, sim)
    connect(ctx, second, name="Second")
    make_export(ctx, segments=BOTH)
    make_export(ctx, name="Planned", segments=BOTH, connection="Second")
    forget(ctx, "p7@example.com", tune=fast)  # never sent

    streamed = _run(ctx, sim, "Newsletter", EngineParts(read=NeverRead()))
    planned = _run(ctx, second, "Planned", EngineParts(first_run=None))

    assert streamed.status is planned.status is RunStatus.SUCCESSFUL, streamed.message
    assert streamed.counts == planned.counts
    assert (streamed.counts.added, streamed.counts.invalid, streamed.counts.duplicates) == (
        65 + 1 + 1 - 1,  # p1..p65, p200, the Unicode one; p7 forgotten
        3,
        2,
    )
    assert streamed.message == planned.message
    assert streamed.warnings == planned.warnings
    assert (streamed.items_done, streamed.items_total) == (planned.items_done, planned.items_total)
    shown = {
        **planned.plan,
        "lists": [{**entry, "list_id": None} for entry in planned.plan["lists"]],
    }
    assert {
        **streamed.plan,
        "lists": [{**e, "list_id": None} for e in streamed.plan["lists"]],
    } == shown
    assert _rejects(ctx, streamed.id) == _rejects(ctx, planned.id)
    assert _people(sim) == _people(second)
    assert list_members(sim) == list_members(second)
    assert contacts(sim)["p3@example.com"]["FirstName"] == "First3"  # the lower id's values
    assert contacts(sim)["p200@example.com"]["FirstName"] == "Won"
    assert "p7@example.com" not in contacts(sim)
    assert "ünïcode@example.com" in list_members(sim)["Seg B"]
    assert _state(ctx, 1) == _state(ctx, 2)
    assert count(stats(sim), "POST /v1/contacts") == count(stats(second), "POST /v1/contacts")
    assert _no_stream_thread()

    reset_stats(sim)
    again = _run(ctx, sim, "Newsletter", EngineParts())  # a rerun reads its state, and is settled
    assert (again.counts.unchanged, again.counts.requests) == (66, 1)


class OneAhead(FirstRun):
    """Room for one batch in memory: the others wait on disk. Records the most on disk; the
    first take waits for reading to end, which it must do with nothing taken."""

    most_spooled = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args, ahead=1)
        self._waited = False

    def batch(self, batch: list[Any] | bytes) -> None:  # (a reading process's batches too)
        super().batch(batch)
        OneAhead.most_spooled = max(OneAhead.most_spooled, self._spool.held)

    async def take(self, most: int) -> list[list[Any]]:
        if not self._waited:  # a guard, not a measure: a reader waiting for room never ends
            self._waited = True
            await asyncio.wait_for(asyncio.to_thread(self._thread.join), timeout=120)
        return await super().take(most)


def test_batches_made_beyond_those_held_in_memory_wait_on_disk(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """With room for one batch in memory, the others go to the spool and come back in turn:
    reading ends (the profile engine let go) before any batch is taken, every one arrives,
    and nothing stays on disk."""
    setup(ctx, sim, tmp_path, people(950, "ab"), segments=BOTH)
    OneAhead.most_spooled = 0

    run = _run(ctx, sim, "Newsletter", EngineParts(read=NeverRead(), first_run=OneAhead))
    assert (run.status, run.counts.added) == (RunStatus.SUCCESSFUL, 950), run.message
    assert OneAhead.most_spooled == 18  # all but the one in memory: nothing was taken
    assert not list(ctx.settings.data_dir.glob("segsync-batches-*"))
    assert count(stats(sim), "POST /v1/contacts") == 19  # 1,900 items, 100 a batch
    assert all(len(members) == 950 for members in list_members(sim).values())


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("dry run", "a dry run plans and shows its plan"),
        ("rerun", "the sync state holds contacts"),
        ("left, then back", "the sync state holds contacts, though no membership"),
        ("contract", "more profiles than the contract limit"),
        ("dotted capital I", "Python and DuckDB lower-case it apart"),
    ],
)
def test_a_first_run_is_read_and_planned_where_streaming_could_not_stand_for_it(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, case: str, why: str
) -> None:
    rows = people(30)
    if case == "dotted capital I":
        rows.append(Person(31, "\u0130stanbul@example.com"))
    setup(ctx, sim, tmp_path, rows, contract_limit=25 if case == "contract" else 100_000)
    if case == "rerun":
        assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).counts.added == 30
        write_profiles(ctx, tmp_path / "people.csv", people(35))
    if case == "left, then back":  # everyone left (mirror removed them), then came back
        assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).counts.added == 30
        write_profiles(ctx, tmp_path / "people.csv", people(30, group=""))
        assert runs.run_export(ctx, "Newsletter", tune=in_process(sim)).counts.removed == 30
        write_profiles(ctx, tmp_path / "people.csv", rows)
    reader = Counted()
    if case == "dry run":
        claim = claim_run(ctx, enqueue_run(ctx, "Newsletter", dry_run=True).run.id)
        assert claim is not None
        run = execute_claim(ctx, claim, tune=in_process(sim), parts=EngineParts(read=reader))
    else:
        run = _run(ctx, sim, "Newsletter", EngineParts(read=reader))
    assert reader.calls == 1, why
    assert _no_stream_thread()
    if case == "contract":
        assert run.status is RunStatus.SKIPPED  # 30 contacts over 25, judged on all of them
        assert count(stats(sim), "POST /v1/contacts") == 0
        assert count(stats(sim), "POST /v1/list") == 0  # asked for lists ahead, made none
    elif case != "dry run":
        assert run.status is RunStatus.SUCCESSFUL, run.message
    if case == "left, then back":  # known contacts, back on the list: none counted as new
        assert (run.counts.added, run.counts.unchanged) == (0, 30)
        assert list_members(sim)["Seg A"] == {p.email for p in rows}


def test_a_first_run_asks_for_the_accounts_lists_while_it_opens_its_profiles(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The account's lists are asked for while the stream is accepted (DuckDB imported and
    opened, the kept SQL's stamp, the checks), not after: the stream's reading waits here until
    they were asked for, which a run asking after its stream was accepted never does. Its two
    lists are then made from that one answer."""
    setup(ctx, sim, tmp_path, people(30, "ab"), segments=BOTH)
    asked = threading.Event()

    class WaitingReading(Reading):
        def read(self, catalog: Any = None) -> bool:
            assert asked.wait(60), "the account's lists were not asked for meanwhile"
            return super().read(catalog)

    class Waiting(FirstRun):
        reading_type = WaitingReading

    class Asking(AutopilotDestination):
        async def existing_lists(self) -> dict[str, str]:
            asked.set()
            return await super().existing_lists()

    parts = EngineParts(
        read=NeverRead(), first_run=Waiting, open_destination=lambda _, config: Asking(config)
    )
    run = _run(ctx, sim, "Newsletter", parts)
    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert run.counts.added == 30
    assert (count(stats(sim), "GET /v1/lists"), count(stats(sim), "POST /v1/list")) == (1, 2)
    assert all(len(members) == 30 for members in list_members(sim).values())


class FailingReading(Reading):
    """Fails with a DuckDB error halfway where :attr:`StopsAfter.error` says so."""

    def _walk(self, names: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
        if not StopsAfter.error:
            return super()._walk(names, rows)
        import duckdb

        def failing() -> Iterator[tuple[Any, ...]]:
            for at, row in enumerate(rows):
                if at == 2_500:  # after drains at 200, 1,200 and 2,200 rows
                    raise duckdb.IOException("the temporary file of the sort is gone")
                yield row

        return super()._walk(names, failing())


class StopsAfter(FirstRun):
    """Hands out ``limit`` batches, then a stop (a worker shutting down) or a DuckDB error."""

    limit = 3
    error = False
    handed = 0
    reading_type = FailingReading

    async def take(self, most: int) -> list[Any]:
        taken = await super().take(min(most, 1))
        StopsAfter.handed += len(taken)
        return taken


@pytest.mark.parametrize("error", [False, True], ids=["stopped", "duckdb-error"])
def test_a_streamed_run_stopped_or_failing_halfway_loses_nothing(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, error: bool
) -> None:
    crowd_ = people(3_000)
    setup(ctx, sim, tmp_path, crowd_)
    StopsAfter.handed, StopsAfter.error = 0, error
    claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    assert claim is not None
    run = execute_claim(
        ctx,
        claim,
        tune=in_process(sim, fast),
        should_yield=lambda: not error and StopsAfter.handed >= StopsAfter.limit,
        parts=EngineParts(read=NeverRead(), first_run=StopsAfter),
    )
    assert _no_stream_thread()  # the profile engine is let go
    hashes, memberships = _state(ctx, 1)
    if error:
        assert run.status is RunStatus.FAILURE
        assert "the temporary file of the sort is gone" in run.message
        assert 0 < len(hashes) <= 2_200  # the batches made before the error (drained by row 2,200)
    else:
        assert run.status is RunStatus.QUEUED  # released, to go on later
        # the batch taken as the stop came is held back: what left is what is recorded
        assert len(hashes) == 100 * (StopsAfter.limit - 1)
        assert count(stats(sim), "POST /v1/contacts") == StopsAfter.limit - 1
    assert set(hashes) <= set(contacts(sim))
    assert len(memberships) == len(hashes)

    if error:
        claim = claim_run(ctx, enqueue_run(ctx, "Newsletter").run.id)
    else:
        claim = claim_run(ctx, run.id)
    assert claim is not None
    rest = execute_claim(ctx, claim, tune=in_process(sim, fast))
    assert rest.status is RunStatus.SUCCESSFUL, rest.message
    assert set(contacts(sim)) == {p.email for p in crowd_}
    assert list_members(sim)["Seg A"] == {p.email for p in crowd_}
    assert len(_state(ctx, 1)[1]) == 3_000


def test_a_sort_that_fails_after_the_lists_were_made_reads_and_plans_with_them(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lists are made while DuckDB sorts; when the sort fails (out of memory, say), the
    run reads and plans, and uses the lists made rather than making them again."""
    import duckdb

    setup(ctx, sim, tmp_path, people(30, "ab"), segments=BOTH)
    sorting = stream_read.sort_memory

    @contextmanager
    def failing_sort(connection: Any) -> Iterator[Any]:
        with sorting(connection) as cursor:

            class Cursor:
                def __getattr__(self, name: str) -> Any:
                    return getattr(cursor, name)

                def execute(self, sql: str, *args: Any) -> Any:
                    if sql.endswith(f"ORDER BY {KEY} NULLS LAST"):  # the members, sorted
                        raise duckdb.OutOfMemoryException("could not allocate the sort")
                    return cursor.execute(sql, *args)

            yield Cursor()

    monkeypatch.setattr(stream_read, "sort_memory", failing_sort)
    reader = Counted()
    run = _run(ctx, sim, "Newsletter", EngineParts(read=reader))
    assert run.status is RunStatus.SUCCESSFUL, run.message
    assert (reader.calls, run.counts.added) == (1, 30)
    assert count(stats(sim), "POST /v1/list") == 2  # one per segment, made once
    assert count(stats(sim), "GET /v1/lists") == 1  # the account's lists asked for once
    assert run.plan is not None
    assert run.plan["lists_to_create"] == 0  # planned with them
    assert all(len(members) == 30 for members in list_members(sim).values())
    assert _no_stream_thread()


async def test_a_profile_engine_that_is_not_duckdb_is_never_opened_to_stream(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse (PostgreSQL, Spark…) cannot give the sorted rows: the stream says no at
    once, without opening the engine (a Spark session costs seconds)."""

    def opened(*args: Any) -> Any:
        raise AssertionError("the profile engine was opened")

    monkeypatch.setattr(stream_read, "profile_reader", opened)
    settings = ctx.settings.model_copy(
        update={"profiles_url": "postgresql://postgres@127.0.0.1:5432/test"}
    )
    warehouse = ServiceContext(settings=settings, db=ctx.db, now=ctx.now, actor=ctx.actor)
    target = cast(RunTarget, SimpleNamespace(contract_limit=100, segments=(), mapping=None))
    first = FirstRun(warehouse, target, frozenset(), 100)
    assert await first.start() is False
    assert await first.sorted() is False
    await first.close()
    assert _no_stream_thread()


class BySegmentReading(Reading):
    """Gives the members segment after segment: an email's rows apart, out of order."""

    def _walk(self, names: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
        return super()._walk(names, iter(sorted(rows, key=lambda r: (r[1], r[0] or ""))))


class BySegment(FirstRun):
    reading_type = BySegmentReading


def test_an_emails_rows_apart_stop_the_run_before_a_contact_goes_twice(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The stream counts on each email's rows coming together, in order (the drains between
    them would hand a contact over twice, each time with some of its lists); where they do not
    (never seen: DuckDB sorts text as Python does) the run stops, and the next run is exact."""
    crowd_ = people(700, "ab")  # 1,400 rows: a drain falls between an email's two rows
    setup(ctx, sim, tmp_path, crowd_, segments=BOTH)
    run = _run(ctx, sim, "Newsletter", EngineParts(read=NeverRead(), first_run=BySegment))
    assert run.status is RunStatus.FAILURE
    assert "came out of order" in (run.message or "")
    assert "@example.com" not in (run.message or "")  # the email masked
    assert _no_stream_thread()

    again = runs.run_export(ctx, "Newsletter", tune=in_process(sim, fast))
    assert again.status is RunStatus.SUCCESSFUL, again.message
    everyone = {p.email for p in crowd_}
    assert list_members(sim) == {"Seg A": everyone, "Seg B": everyone}
