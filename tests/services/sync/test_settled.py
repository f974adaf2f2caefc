"""Settled contacts found apart (services/sync/settled.py): the walk of members and sync state in
email order, and a run planned with it against one that reads and plans everything — on real
DuckDB and SQLite files, after a real first run against the simulator."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.emails import normalise_email
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import RemovalPolicy, build_plan
from segsync.domain.runs import RunStatus
from segsync.services import runs
from segsync.services.context import ServiceContext, open_context
from segsync.services.exports import DataMatching, ExportSettings, create_export
from segsync.services.runs.queue import claim_run, enqueue_run
from segsync.services.runs.worker import execute_claim
from segsync.services.sync import settled as settled_module
from segsync.services.sync.by_email import (
    SORT_MEMORY,
    SORT_THREADS,
    WHITESPACE,
    email_key,
    sort_memory,
)
from segsync.services.sync.read import read_members
from segsync.services.sync.settled import Settled, _Walk, find_settled
from segsync.services.sync.store import RunStore
from segsync.services.sync.target import load_target
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.sync import SyncStateRepository
from tests.conftest import fresh_settings
from tests.services.runs_support import (
    Person,
    connect,
    connection_id,
    create_segments,
    ctx,
    in_process,
    people,
    sim,
    write_profiles,
)

__all__ = ["ctx", "sim"]  # fixtures

MAPPING = FieldMapping(
    email="Email", first_name="FirstName", last_name="LastName", catalogue=AUTOPILOT_FIELDS
)


def test_the_whitespace_duckdb_trims_is_what_python_strips() -> None:
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_the_email_key_is_python_s_strip_and_lower() -> None:
    """Trimmed only where the text begins or ends with whitespace: the same key as trimming
    every email, and as Python's ``strip().lower()``."""
    raw = [
        " A@x.com",
        "A@x.com\u3000",
        "\x85b@X.com\x1f",
        "a b@x.com",
        "a\u2028",
        "",
        "  ",
        "é@x.fr",
        "\tMixed\r\n",
        "plain@x.com",
        "\u00a0\u00a0",
        None,
    ]
    connection = duckdb.connect()
    connection.execute('CREATE TABLE t ("E mail" VARCHAR)')
    connection.executemany("INSERT INTO t VALUES (?)", [[r] for r in raw])
    trimmed = 'lower(trim("E mail", \'' + WHITESPACE + "'))"
    rows = connection.execute(
        f'SELECT "E mail", {email_key("E mail")}, {trimmed} FROM t'
    ).fetchall()
    assert [(key, every) for _, key, every in rows] == [(r, r) for _, _, r in rows]
    assert [key for _, key, _ in rows] == [None if r is None else r.strip().lower() for r in raw]


def test_duckdb_says_a_key_is_plain_only_where_python_makes_that_key_of_the_email(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The member query's "plain" column: true for ASCII emails whose key Python would make of
    them too (written otherwise included), never for the rest — which the walk asks Python."""
    emails = [
        "p1@example.com",
        "P2@Example.COM",
        " p3@example.com\t",
        "\u212aelvin@example.com",
        "\u00e4@example.com",
        "not an email",
        "p7@example.123",
        "\u00a0p8@example.com",
        "",
    ]
    crowd = [Person(i, email) for i, email in enumerate(emails, start=1)]
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    create_segments(ctx)
    connect(ctx, sim)
    matching = DataMatching("Email", "FirstName", "LastName")
    settings = ExportSettings("Plain", connection_id(ctx, "Sim"), matching, ["Seg A"])
    create_export(ctx, settings)
    with ctx.db.session() as session:
        target = load_target(session, ExportRepository(session).get_by_name("Plain"))
    query = settled_module.walk_sql(ctx, target.segments, target.mapping)
    assert query is not None
    rows = ctx.profiles.backend.con.execute(query).fetchall()
    assert len(rows) == len(emails)
    plain = {row[4] for row in rows if row[2]}  # the raw email
    assert plain == {"p1@example.com", "P2@Example.COM", " p3@example.com\t"}
    for key, _, is_plain, _, raw, *_ in rows:
        assert not is_plain or normalise_email(raw)[0] == key


# -- the walk itself --------------------------------------------------------------------------

NAMES = (
    "__k",
    "__s",
    "__segsync_key_plain",
    "id",
    "Email",
    "FirstName",
    "__segsync_payload_sha256",
    "__segsync_email_as_is",
)


def member(email: str | None, segment: str, pid: int, digest: str | None = "h", raw: Any = None):  # type: ignore[no-untyped-def]
    """A member row as the profile engine gives it: ``raw`` None means the email is taken as
    it is."""
    plain = raw is None
    return (email, segment, plain, pid, raw if raw is not None else email, "Ann", digest, plain)


def walk(
    members: list[tuple[Any, ...]],
    contacts: list[tuple[str, str]],
    memberships: list[tuple[str, str]],
    *,
    listed: frozenset[str] = frozenset({"1", "2"}),
    pending: frozenset[str] = frozenset(),
    most: float = 1000,
) -> Settled | None:
    runner = _Walk(MAPPING, listed, set(pending), frozenset(), most)
    return runner.run((NAMES, iter([members])), iter(contacts), iter(memberships))


def test_contacts_as_the_state_has_them_are_settled_and_the_rest_is_held_to_read() -> None:
    settled = walk(
        [
            member("a@x.com", "1", 1),
            member("a@x.com", "2", 1),
            member("b@x.com", "1", 2, digest="new"),  # changed
            member("c@x.com", "2", 3),  # joined segment 2
            member("d@x.com", "1", 4, raw=" D@X.com"),  # normalised as the state has it
            member("e@x.com", "1", 5),
            member("e@x.com", "1", 6),  # two profiles: merged
            member(None, "1", 7),  # no email
        ],
        [
            ("a@x.com", "h"),
            ("b@x.com", "h"),
            ("c@x.com", "h"),
            ("d@x.com", "h"),
            ("e@x.com", "h"),
            ("gone@x.com", "h"),
        ],
        [
            ("a@x.com", "1"),
            ("a@x.com", "2"),
            ("b@x.com", "1"),
            ("c@x.com", "1"),
            ("d@x.com", "1"),
            ("e@x.com", "1"),
            ("gone@x.com", "1"),
        ],
    )
    assert settled is not None
    assert (settled.contacts, dict(settled.per_segment)) == (2, {"1": 2, "2": 1})
    assert settled.unsettled == {"b@x.com", "c@x.com", "e@x.com", "gone@x.com"}
    assert settled.rows == {"1": 6, "2": 2}
    assert {s: [row[0] for row in rows] for s, rows in settled.unread.items()} == {
        "1": [2, 5, 6, 7],
        "2": [3],
    }


def test_a_profile_twice_in_a_segment_is_read_in_full_and_every_row_counted() -> None:
    settled = walk(
        [member("a@x.com", "1", 1), member("a@x.com", "1", 1), member("b@x.com", "1", 2)],
        [("a@x.com", "h"), ("b@x.com", "h")],
        [("a@x.com", "1"), ("b@x.com", "1")],
    )
    assert settled is not None
    assert (settled.contacts, settled.unsettled, settled.rows) == (1, {"a@x.com"}, {"1": 3})


def test_the_state_is_read_ahead_up_to_a_bound_and_given_whole_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settled_module, "STATE_AHEAD", 3)
    taken: list[int] = []

    def source() -> Iterator[tuple[str, str]]:
        for i in range(7):
            taken.append(i)
            yield (f"{i}@x.com", "h")

    rows = settled_module._ahead(source())
    assert taken == [0, 1, 2]  # read now, before the walk asks
    assert [email for email, _ in rows] == [f"{i}@x.com" for i in range(7)]


def test_pending_lists_missing_and_intents_only_are_never_settled() -> None:
    settled = walk(
        [member("a@x.com", "1", 1), member("b@x.com", "3", 2), member("c@x.com", "1", 3)],
        [("a@x.com", "h"), ("b@x.com", "h"), ("c@x.com", "")],
        [("a@x.com", "1"), ("b@x.com", "3"), ("c@x.com", "1")],
        pending=frozenset({"a@x.com"}),
    )
    assert settled is not None
    assert (settled.contacts, settled.unsettled) == (0, {"a@x.com", "b@x.com", "c@x.com"})


@pytest.mark.parametrize(
    ("members", "contacts", "memberships"),
    [
        ([member("b@x.com", "1", 1), member("a@x.com", "1", 2)], [], []),
        ([member("a@x.com", "1", 1)], [("b@x.com", "h"), ("a@x.com", "h")], []),
        ([member("a@x.com", "1", 1)], [], [("b@x.com", "1"), ("a@x.com", "1")]),
        ([member("a@x.com", "1", 1, raw="b@x.com")], [], []),  # Python normalises it apart
    ],
)
def test_the_walk_gives_up_where_it_cannot_vouch(
    members: list[tuple[Any, ...]],
    contacts: list[tuple[str, str]],
    memberships: list[tuple[str, str]],
) -> None:
    assert walk(members, contacts, memberships) is None


def test_the_walk_gives_up_when_too_much_is_unsettled() -> None:
    members = [member(f"{i}@x.com", "1", i) for i in range(10)]
    assert walk(members, [], [], most=9) is None
    assert walk(members, [], [], most=10) is not None


# -- a run planned with it and without it -----------------------------------------------------


def plan_of(ctx: ServiceContext, *, apart: bool) -> tuple[Any, ...]:
    """Everything a run decides before it sends, read and planned in full or with the
    settled contacts apart."""
    with ctx.db.session() as session:
        record = ExportRepository(session).get_by_name("Plain")
        target = load_target(session, record)
    store = RunStore(ctx, run_id=0, export_id=target.export_id, owner="test")
    try:
        light = store._sync_state(target, True)
        found = None
        if apart:
            found = find_settled(
                ctx, target.export_id, target.segments, target.mapping, light, frozenset()
            )
            assert found is not None
        state = store._sync_state(target, False) if found is None else found.state(light)
    finally:
        store.thread.close()
    scan = read_members(
        ctx, target.segments, target.mapping, state.needs, frozenset(), state.hashes, found
    )
    plan = build_plan(
        scan.desired(settled_apart=True),
        state,
        segments=[s.key for s in target.segments],
        removal=RemovalPolicy.MIRROR,
        settled=scan.settled(),
        apart=(scan.apart, scan.apart_per_segment),
    )
    items = [
        (i.email, i.segment, i.payload_hash, dict(i.fields), i.profile_id) for i in plan.items()
    ]
    lists = {k: dataclasses.astuple(v) for k, v in plan.per_list.items()}
    rejects = sorted((r.kind, r.profile_id, r.email or "", r.reason) for r in scan.rejects)
    counts = (scan.members, scan.invalid, scan.duplicates, scan.contacts, scan.per_segment)
    return (counts, rejects, items, plan.removals, plan.counts, lists,
            dict(state.recorded_per_segment()), plan.several)  # fmt: skip


def change(rng: random.Random, crowd: list[Person]) -> list[Person]:
    """Renames, emails written otherwise, changed, shared, emptied or made invalid, people
    moved between segments, removed and added."""
    crowd = list(crowd)
    for i, person in enumerate(crowd):
        roll = rng.random()
        if roll < 0.05:
            crowd[i] = dataclasses.replace(person, first=person.first + "x")
        elif roll < 0.10 and person.email:
            crowd[i] = dataclasses.replace(person, email=f" {person.email.upper()}\t")
        elif roll < 0.13:
            crowd[i] = dataclasses.replace(person, email=f"new{person.id}@example.com")
        elif roll < 0.16:
            crowd[i] = dataclasses.replace(person, email=rng.choice(crowd).email)
        elif roll < 0.18:
            crowd[i] = dataclasses.replace(person, email=rng.choice([None, "not an email"]))
        elif roll < 0.26:
            crowd[i] = dataclasses.replace(person, group=rng.choice(["a", "b", "ab", ""]))
        elif roll < 0.28:
            crowd[i] = dataclasses.replace(person, first="Esc\x1bape")  # DuckDB cannot hash it
    del crowd[rng.randrange(len(crowd))]
    return crowd + people(3, group="ab", start=1000)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceContext]:
    """A service context whose metadata database is SQLite or PostgreSQL (whose own order of
    text may differ from Python's: the state is read in its "C" collation)."""
    settings = fresh_settings(tmp_path / "data")
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")("settled")
        settings = settings.model_copy(update={"database_url": url})
    with open_context(settings) as services:
        yield services


def first_run(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, crowd: list[Person]
) -> None:
    """The export "Plain" (Seg A and Seg B, mirror, no holds) of ``crowd``, run once."""
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    create_segments(ctx)
    connect(ctx, sim)
    matching = DataMatching("Email", "FirstName", "LastName")
    create_export(
        ctx,
        ExportSettings("Plain", connection_id(ctx, "Sim"), matching, ["Seg A", "Seg B"],
                       removal="mirror", hold_removals="off", hold_growth="off"),
    )  # fmt: skip
    assert runs.run_export(ctx, "Plain", tune=in_process(sim)).counts.added > 0


@pytest.mark.parametrize("seed", range(3))
def test_a_plan_with_the_settled_apart_is_the_plan_of_everything(
    meta: ServiceContext, sim: RunningSimulator, tmp_path: Path, seed: int
) -> None:
    ctx = meta
    rng = random.Random(seed)
    groups = ["a", "b", "ab", ""]
    crowd = [dataclasses.replace(p, group=rng.choice(groups)) for p in people(120)]
    crowd[5] = dataclasses.replace(crowd[5], email=" P6@Example.com")
    crowd[7] = dataclasses.replace(crowd[7], email="Zed@example.com")  # before "a…" byte-wise
    first_run(ctx, sim, tmp_path, crowd)
    assert plan_of(ctx, apart=True) == plan_of(ctx, apart=False)

    write_profiles(ctx, tmp_path / "people.csv", change(rng, crowd))
    with ctx.db.session() as session:  # a batch whose answer never came, a removal unconfirmed
        export_id = ExportRepository(session).get_by_name("Plain").id
        sync = SyncStateRepository(session)
        intended = [(1, "p30@example.com"), (2, "late@example.com")]
        sync.record_intents(export_id, [e for _, e in intended], intended, now=ctx.now())
        sync.mark_pending(export_id, [(1, "p40@example.com"), (2, "p41@example.com")])
    assert plan_of(ctx, apart=True) == plan_of(ctx, apart=False)


def test_a_merged_profile_joining_a_list_gets_its_winner_s_payload_from_the_rows_held(
    meta: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """Profile 15 (Seg B) takes the email of profile 3 (Seg A, settled on its list before):
    the contact joins list B with profile 3's values, though profile 3's row in Seg A needed
    none. The walk holds both rows, so that payload comes from the rows held (no reading
    again, no Ibis) and the plan is the plan of everything."""
    ctx = meta
    crowd = people(10, group="a") + people(10, group="b", start=11)
    first_run(ctx, sim, tmp_path, crowd)
    moved = [dataclasses.replace(p, email="p3@example.com") if p.id == 15 else p for p in crowd]
    write_profiles(ctx, tmp_path / "people.csv", moved)
    apart = plan_of(ctx, apart=True)
    assert apart == plan_of(ctx, apart=False)
    joined = [(segment, fields, profile) for email, segment, _, fields, profile in apart[2]
              if email == "p3@example.com"]  # fmt: skip
    assert joined == [("2", {"FirstName": "First3", "LastName": "Last3"}, 3)]


def test_the_sort_keeps_to_its_memory_and_the_engine_gets_its_settings_back() -> None:
    connection = duckdb.connect()
    asked = (
        "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order'), "
        "current_setting('threads')"
    )
    default = connection.execute(asked).fetchone()
    limit = duckdb.connect()
    limit.execute(f"SET memory_limit = '{SORT_MEMORY}'")
    printed = limit.execute("SELECT current_setting('memory_limit')").fetchone()
    assert printed is not None
    for _ in range(3):  # a worker's runs, one after another: nothing drifts
        with sort_memory(connection) as cursor:
            during = cursor.execute(asked).fetchone()
            assert during == (printed[0], False, SORT_THREADS)
    assert connection.execute(asked).fetchone() == default
    connection.execute("SET memory_limit = '1GB'")  # DuckDB prints it 953.6 MiB
    with sort_memory(connection):
        pass
    after = connection.execute(asked).fetchone()  # set again as printed: within 0.1 MiB
    assert after is not None
    assert after[0] in {"953.6 MiB", "953.5 MiB"}


@pytest.mark.parametrize("during", ["query", "fetch"])
def test_a_duckdb_error_in_the_walk_has_the_run_read_everything(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    during: str,
) -> None:
    """DuckDB running out of memory for the sort (here made to), in its query — while the
    state is read ahead on the other thread — or as its rows are fetched: the walk vouches for
    nothing, the engine's settings come back, and the run reads and plans everything as
    before."""
    first_run(ctx, sim, tmp_path, people(60, group="ab"))
    real_rows = settled_module.sorted_rows

    def failing(cursor: Any, sql: str) -> Any:
        if during == "query":
            raise duckdb.OutOfMemoryException("failed to allocate data of size 80.0 MiB")
        names, _chunks = real_rows(cursor, sql)

        def chunks() -> Iterator[list[tuple[Any, ...]]]:
            raise duckdb.OutOfMemoryException("failed to allocate data of size 80.0 MiB")
            yield []

        return names, chunks()

    monkeypatch.setattr(settled_module, "sorted_rows", failing)
    with ctx.db.session() as session:
        target = load_target(session, ExportRepository(session).get_by_name("Plain"))
    store = RunStore(ctx, run_id=0, export_id=target.export_id, owner="test")
    try:
        light = store._sync_state(target, True)
    finally:
        store.thread.close()
    con = ctx.profiles.backend.con
    before = con.execute("SELECT current_setting('memory_limit'), current_setting('threads')")
    settings = before.fetchone()

    assert find_settled(ctx, target.export_id, target.segments, MAPPING, light, frozenset()) is None
    after = con.execute("SELECT current_setting('memory_limit'), current_setting('threads')")
    assert after.fetchone() == settings
    claim = claim_run(ctx, enqueue_run(ctx, "Plain").run.id)
    assert claim is not None
    with caplog.at_level(logging.INFO, logger=settled_module.__name__):
        rerun = execute_claim(ctx, claim, tune=in_process(sim))
    assert "none vouched for (DuckDB: failed to allocate" in caplog.text  # the engine's walk too
    assert rerun.status is RunStatus.SUCCESSFUL
    assert (rerun.counts.unchanged, rerun.counts.requests) == (60, 1)  # read in full: unchanged
