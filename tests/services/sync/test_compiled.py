"""A run's member SQL kept for the next run (services/sync/compiled.py): taken as it is while
nothing it is made of changes, compiled again when something does — on real DuckDB and SQLite
files, with runs against the simulator over HTTP, one of them in a process of its own that must
not import Ibis."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from segsync.domain.mapping import FieldMapping
from segsync.services import runs
from segsync.services.connections import connection_id
from segsync.services.context import ServiceContext
from segsync.services.exports import (
    DataMatching,
    ExportEdit,
    ExportSettings,
    create_export,
    duplicate_export,
    edit_export,
)
from segsync.services.profiles import import_profiles
from segsync.services.sync import compiled, settled, stream_query
from segsync.services.sync import read as read_module
from segsync.services.sync.read import SegmentSource
from segsync.services.sync.settled import walk_sql
from segsync.services.sync.stream_query import stream_sql
from segsync.services.sync.target import RunTarget, load_target
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.exports import ExportRepository
from segsync.storage.repositories.segments import SegmentRepository
from tests.services.runs_support import (
    Person,
    connect,
    contacts,
    create_segments,
    ctx,
    in_process,
    list_members,
    people,
    segment_definition,
    sim,
    write_profiles,
)

__all__ = ["ctx", "sim"]  # fixtures


def plain_setup(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, crowd: list[Person]
) -> None:
    """Profiles, the segments, a connection and the export "Newsletter" of "Seg A" mapping
    text only (email and names): its payloads are hashed by DuckDB, so a rerun walks. No hold
    on removals: a test empties the list on purpose."""
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    create_segments(ctx)
    connect(ctx, sim)
    matching = DataMatching("Email", "FirstName", "LastName")
    export = ExportSettings(
        "Newsletter", connection_id(ctx, "Sim"), matching, ["Seg A"], hold_removals="off"
    )
    create_export(ctx, export)


def target_of(ctx: ServiceContext) -> RunTarget:
    with ctx.db.session() as session:
        return load_target(session, ExportRepository(session).get_by_name("Newsletter"))


@pytest.fixture
def target(ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path) -> RunTarget:
    """The export "Newsletter" of :func:`plain_setup`, ten people, never run, the SQL its
    saving kept deleted: nothing kept."""
    plain_setup(ctx, sim, tmp_path, people(10))
    found = target_of(ctx)
    kept_file(ctx, found).unlink()
    return found


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The purposes compiled, in order, each time the run's SQL is compiled (not taken)."""
    done: list[str] = []
    compilers = ((settled, "walk_sql", "walk"), (stream_query, "stream_sql", "stream"))
    for module, name, purpose in compilers:
        real = getattr(module, name)
        counted = functools.partial(_counted, done, purpose, real)
        monkeypatch.setattr(module, name, counted)
    return done


def _counted(done: list[str], purpose: str, compile_sql: compiled.Compile, *args: Any) -> Any:
    done.append(purpose)
    return compile_sql(*args)


def kept_file(ctx: ServiceContext, target: RunTarget) -> Path:
    return ctx.settings.data_dir / "cache" / "run-sql" / f"{target.export_id}.json"


def counted_stamps(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every stamp taken from now on (:func:`compiled.stamp`), in order."""
    stamps: list[str | None] = []
    stamp = compiled.stamp
    monkeypatch.setattr(compiled, "stamp", lambda *args: stamps.append(stamp(*args)) or stamps[-1])
    return stamps


def ask(ctx: ServiceContext, target: RunTarget, purpose: str = "walk", **changed: Any) -> Any:
    segments: Sequence[SegmentSource] = changed.get("segments", target.segments)
    mapping: FieldMapping = changed.get("mapping", target.mapping)
    return compiled.member_sql(ctx, target.export_id, purpose, segments, mapping)  # type: ignore[arg-type]


def test_the_sql_kept_is_what_compiling_gives_and_is_taken_until_an_input_changes(
    ctx: ServiceContext, target: RunTarget, compiles: list[str]
) -> None:
    walk = ask(ctx, target)
    assert compiles == ["walk"]  # the purpose asked for, alone
    assert walk is not None
    assert walk == walk_sql(ctx, target.segments, target.mapping)
    assert ask(ctx, target, "stream") == stream_sql(ctx, target.segments, target.mapping)
    assert compiles == ["walk", "stream"]
    assert set(json.loads(kept_file(ctx, target).read_text())["sql"]) == {"walk", "stream"}
    assert json.loads(kept_file(ctx, target).read_text())["sql"]["walk"] == walk
    compiles.clear()

    assert ask(ctx, target) == walk  # nothing changed
    assert ask(ctx, target, "stream") is not None
    ctx.profiles.backend.raw_sql("UPDATE people SET FirstName = 'Zed'")  # rows, not columns
    assert ask(ctx, target) == walk
    assert compiles == []

    other = [
        SegmentSource(s.key, s.name, segment_definition(s.name, ["b"])) for s in target.segments
    ]
    assert ask(ctx, target, segments=other) != walk
    assert compiles == ["walk"]
    compiles.clear()
    assert ask(ctx, target, segments=other) == walk_sql(ctx, other, target.mapping)
    assert compiles == []

    ask(ctx, target)  # the export's own segments again: kept anew
    compiles.clear()
    ctx.profiles.backend.raw_sql("ALTER TABLE people ADD COLUMN Extra VARCHAR")
    ask(ctx, target)
    assert compiles == ["walk"]  # a new column: a new stamp, though the SQL is alike
    ask(ctx, target)
    ctx.profiles.backend.raw_sql("ALTER TABLE people ALTER COLUMN Extra TYPE INTEGER")
    ask(ctx, target)
    assert compiles == ["walk"] * 2  # a column retyped


def test_a_change_of_mapping_or_of_segsync_code_is_compiled_again(
    ctx: ServiceContext, target: RunTarget, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(ctx, target)
    fewer = FieldMapping(email="Email", catalogue=target.mapping.catalogue)
    assert ask(ctx, target, mapping=fewer) == walk_sql(ctx, target.segments, fewer)
    assert compiles == ["walk"] * 2
    code = compiled.code_stamp()
    monkeypatch.setattr(compiled, "code_stamp", lambda: [*code, "one file changed"])
    ask(ctx, target, mapping=fewer)
    assert compiles == ["walk"] * 3


def test_the_code_stamp_follows_every_file_of_the_package(tmp_path: Path) -> None:
    """On a copy of a package, not segsync's own files: changing their times would change the
    stamp under the tests running beside this one (CI runs two at once)."""
    (tmp_path / "inner" / "__pycache__").mkdir(parents=True)
    module = tmp_path / "inner" / "rules.py"
    module.write_text("A = 1\n")
    before = compiled.code_stamp(tmp_path)
    (tmp_path / "inner" / "__pycache__" / "rules.cpython-311.pyc").write_bytes(b"x")
    assert compiled.code_stamp(tmp_path) == before  # bytecode is not code
    status = module.stat()
    os.utime(module, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    touched = compiled.code_stamp(tmp_path)
    assert touched != before
    module.write_text("A = 22\n")  # another size
    os.utime(module, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert compiled.code_stamp(tmp_path) not in (before, touched)
    (tmp_path / "new.py").write_text("")
    assert str(tmp_path / "new.py") in [path for path, *_ in compiled.code_stamp(tmp_path)[1]]
    ours = compiled.code_stamp()
    assert ours[1] == compiled.code_stamp(compiled.PACKAGE)[1]
    assert str(Path(compiled.__file__)) in [path for path, *_ in ours[1]]
    assert [entry[0] for entry in ours[2:]] == list(compiled.LIBRARIES)
    assert all(len(entry) == 4 for entry in ours[2:])  # each library found, by its file


def test_a_relative_rule_is_compiled_for_each_moment(
    ctx: ServiceContext, target: RunTarget, compiles: list[str]
) -> None:
    """A definition anchored on the run's moment (``within_last``) gives SQL that changes
    with the clock: never taken from a run before at another moment."""
    rule = {"attribute": "Score", "op": "greater_than", "value": 0}
    recent = {"attribute": "Since", "op": "within_last", "value": {"days": 30}}
    ctx.profiles.backend.raw_sql("ALTER TABLE people ADD COLUMN Since DATE DEFAULT current_date")
    definition = json.dumps({"name": "R", "rules": [{"conditions": {"all": [rule, recent]}}]})
    relative = [SegmentSource("9", "R", definition)]
    moment = ctx.now()
    at = [
        ServiceContext(settings=ctx.settings, db=ctx.db, now=lambda d=d: moment + timedelta(days=d))
        for d in (0, 0, 1)
    ]
    try:
        first = ask(at[0], target, segments=relative)
        assert ask(at[1], target, segments=relative) == first  # the same moment: the same SQL
        assert compiles == ["walk"]
        assert ask(at[2], target, segments=relative) != first
    finally:
        for each in at:
            each.close()
    assert compiles == ["walk"] * 2


def test_an_unreadable_kept_file_is_compiled_around(
    ctx: ServiceContext, target: RunTarget, compiles: list[str]
) -> None:
    walk = ask(ctx, target)
    path = kept_file(ctx, target)
    for broken in ("{not json", json.dumps([1, 2]), json.dumps({"stamp": None})):
        path.write_text(broken)
        assert ask(ctx, target) == walk
    assert compiles == ["walk"] * 4
    assert json.loads(path.read_text())["sql"]["walk"] == walk  # kept again
    path.unlink()
    path.parent.rmdir()
    path.parent.write_text("a file where the folder should be")
    assert ask(ctx, target) == walk  # cannot keep it: compiled, no error


def test_saving_an_export_keeps_its_sql_and_an_edit_or_a_copy_keeps_it_anew(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    plain_setup(ctx, sim, tmp_path, people(10))
    target = target_of(ctx)
    kept = json.loads(kept_file(ctx, target).read_text())
    assert kept["sql"] == {
        "walk": walk_sql(ctx, target.segments, target.mapping),
        "stream": stream_sql(ctx, target.segments, target.mapping),
    }
    edit_export(ctx, target.export_id, ExportEdit(segments=["Seg A", "Seg B"]))
    edited = target_of(ctx)
    again = json.loads(kept_file(ctx, edited).read_text())
    assert again["stamp"] != kept["stamp"]
    assert again["sql"]["walk"] == walk_sql(ctx, edited.segments, edited.mapping)
    edit_export(ctx, target.export_id, ExportEdit(list_prefix="News: "))  # not in the SQL
    assert json.loads(kept_file(ctx, edited).read_text()) == again
    edit_export(ctx, target.export_id, ExportEdit(first_name=None))  # the mapping
    fewer = target_of(ctx)
    assert json.loads(kept_file(ctx, fewer).read_text())["sql"]["stream"] == stream_sql(
        ctx, fewer.segments, fewer.mapping
    )
    copy = duplicate_export(ctx, target.export_id, "Copy")
    assert json.loads(kept_file(ctx, fewer).read_text()) == json.loads(
        (kept_file(ctx, fewer).parent / f"{copy.id}.json").read_text()
    )  # the same settings, the same SQL: kept for the copy too


def test_an_export_whose_segments_cannot_compile_yet_is_saved_with_nothing_kept(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """Profiles without the segments' attribute (``Grp``): saving the export works, nothing is
    kept, and its run is left to compile (and to say what is wrong)."""
    people_csv = tmp_path / "people.csv"
    people_csv.write_text("id,Email,FirstName,LastName\n1,p1@example.com,Ann,Lee\n")
    import_profiles(ctx, people_csv, "people", key="id", profile=True, replace=True)
    create_segments(ctx)
    connect(ctx, sim)
    matching = DataMatching("Email", "FirstName", "LastName")
    early = ExportSettings("Early", connection_id(ctx, "Sim"), matching, ["Seg A"])
    record = create_export(ctx, early)
    assert not (ctx.settings.data_dir / "cache" / "run-sql" / f"{record.id}.json").exists()


def test_saving_an_export_on_another_engine_neither_opens_it_nor_compiles(
    ctx: ServiceContext,
    target: RunTarget,
    compiles: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only DuckDB's SQL is kept: on a warehouse (PostgreSQL, Spark…) saving compiles nothing
    ahead and never opens the engine (a Spark session costs seconds)."""

    opens: list[object] = []

    def opened(*args: Any) -> Any:
        opens.append(args)  # prepare swallows what fails: counted, not only raised
        raise AssertionError("the profile engine was opened")

    real = read_module.profile_reader
    monkeypatch.setattr(read_module, "profile_reader", opened)
    url = "postgresql://postgres@127.0.0.1:5432/test"
    settings = ctx.settings.model_copy(update={"profiles_url": url})
    warehouse = ServiceContext(settings=settings, db=ctx.db, now=ctx.now, actor=ctx.actor)
    compiled.prepare(warehouse, target.export_id)
    assert opens == []
    assert compiles == []
    assert not kept_file(ctx, target).exists()
    monkeypatch.setattr(read_module, "profile_reader", real)
    stamps = counted_stamps(monkeypatch)
    compiled.prepare(ctx, target.export_id)  # on DuckDB: both kept
    assert compiles == ["stream", "walk"]
    assert len(stamps) == 1  # one stamp, one file written, for both


RUN_REPORTING_IBIS = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps({"ibis": "ibis" in sys.modules}), file=sys.stderr))
sys.argv = ["segsync", *sys.argv[1:]]
runpy.run_module("segsync", run_name="__main__")
"""


def run_in_a_process(data_dir: Path) -> tuple[dict[str, Any], bool]:
    """``segsync exports run Newsletter --json`` in a fresh process: its record, and whether
    it imported Ibis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    args = ["--data-dir", str(data_dir), "exports", "run", "Newsletter", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", RUN_REPORTING_IBIS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])["ibis"]


def test_a_run_after_a_first_run_takes_its_sql_as_kept_and_never_imports_ibis(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    """The first run takes its SQL as kept when the export was saved; the next, with a renamed
    contact, a join and a leave, takes its walk's — no Ibis in either process — and leaves the
    simulator as a run that compiled would; a segment edited behind the export's back is
    compiled again (Ibis loaded) and followed."""
    plain_setup(ctx, sim, tmp_path, people(30))
    ctx.close()
    first, loaded = run_in_a_process(ctx.settings.data_dir)
    assert first["status"] == "successful"
    assert first["counts"]["added"] == 30
    assert not loaded  # its SQL was kept when the export was saved
    sql = ctx.profiles.backend.raw_sql
    sql("UPDATE people SET FirstName = 'Renamed' WHERE id = 1")
    sql("UPDATE people SET Grp = 'b' WHERE id = 2")  # leaves Seg A
    sql("INSERT INTO people VALUES (99, 'new@example.com', 'New', 'Lee', 'a', 1.0)")
    ctx.close()  # the run's process needs the profile file
    again, loaded = run_in_a_process(ctx.settings.data_dir)
    assert not loaded
    assert again["status"] == "successful"
    assert (again["counts"]["updated"], again["counts"]["added"]) == (1, 1)
    assert again["counts"]["removed"] == 1
    assert contacts(sim)["p1@example.com"]["FirstName"] == "Renamed"
    wanted = {f"p{i}@example.com" for i in range(1, 31) if i != 2} | {"new@example.com"}
    assert list_members(sim)["Seg A"] == wanted
    with ctx.db.session() as session:
        repo = SegmentRepository(session)
        seg = repo.get_by_name("Seg A")
        repo.update(seg.id, now=ctx.now(), definition=segment_definition("Seg A", ["b"]))
    ctx.close()
    edited, loaded = run_in_a_process(ctx.settings.data_dir)
    assert loaded
    assert edited["status"] == "successful"
    assert list_members(sim)["Seg A"] == {"p2@example.com"}  # the edited segment, followed


def test_a_run_in_process_keeps_and_takes_the_sql(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, compiles: list[str]
) -> None:
    plain_setup(ctx, sim, tmp_path, people(10))
    kept_file(ctx, target_of(ctx)).unlink()  # as an export saved before its SQL was kept
    compiles.clear()
    runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert compiles == ["stream", "walk"]  # the walk's compiled ahead, for the next run
    ctx.profiles.backend.raw_sql("UPDATE people SET FirstName = 'Other' WHERE id = 3")
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert run.counts.updated == 1
    assert compiles == ["stream", "walk"]  # the rerun's walk took its SQL as kept


def test_a_first_run_whose_walk_sql_was_kept_at_saving_looks_it_up_once(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving kept both queries: the first run takes its stream's and, seeing the walk's kept
    beside it, does not look the kept file up again at its end (one stamp in the run)."""
    plain_setup(ctx, sim, tmp_path, people(10))
    stamps = counted_stamps(monkeypatch)
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    assert run.counts.added == 10
    assert len(stamps) == 1
