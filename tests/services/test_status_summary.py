"""The status summary of Admin > System (T3 for many exports): exports counted by latest
status, the failing ones most recent first, and a fixed number of queries for status and
summary whatever the number of exports."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import event

from segsync.domain.permissions import Role
from segsync.services.system.status import status, status_summary
from segsync.storage.models.runs import Run
from segsync.storage.repositories.exports import ExportRepository
from tests.services.export_fixtures import acting_as
from tests.services.runs_support import make_export, sim
from tests.services.schedule_support import T0, World, world

__all__ = ["sim", "world"]  # fixtures


def _add_run(world: World, export: str, status_value: str, at: datetime, **extra: object) -> int:
    with world.ctx.db.session() as session:
        record = ExportRepository(session).get_by_name(export)
        values: dict[str, object] = {
            "export_id": record.id,
            "export_name": export,
            "connection_id": record.connection_id,
            "status": status_value,
            "trigger": "manual",
            "actor": "test",
            "dry_run": False,
            "queued_at": at,
            "started_at": at,
            "ended_at": at + timedelta(seconds=30),
            "counts": "{}",
            "items_total": 0,
            "items_done": 0,
            "message": f"{export} {status_value}",
        }
        values.update(extra)
        run = Run(**values)
        session.add(run)
        session.flush()
        return run.id


def test_summary_counts_exports_by_status_and_lists_the_failing_ones(world: World) -> None:
    for name in ("Alpha", "Beta", "Gamma", "Delta"):
        make_export(world.ctx, name=name, segments=("Seg B",))
    _add_run(world, "Alpha", "successful", T0 - timedelta(hours=3))
    _add_run(world, "Alpha", "failure", T0 - timedelta(hours=2))  # the latest counts
    _add_run(world, "Beta", "failure", T0 - timedelta(hours=1))
    _add_run(world, "Gamma", "failure", T0 - timedelta(hours=5))
    _add_run(world, "Gamma", "successful", T0 - timedelta(hours=4))
    _add_run(world, "Delta", "failure", T0 - timedelta(minutes=1), dry_run=True)  # not counted

    summary = status_summary(acting_as(world.ctx, Role.VIEWER), limit=1)

    # Newsletter (from the world) and Delta never ran for real.
    assert summary.export_counts == {"failure": 2, "never run": 2, "successful": 1}
    assert summary.exports_total == 5
    assert summary.attention_total == 2
    (beta,) = summary.attention  # limit=1: the most recent failure only
    assert (beta.name, beta.status, beta.details["message"]) == ("Beta", "failure", "Beta failure")
    assert beta.last_update == T0 - timedelta(hours=1) + timedelta(seconds=30)
    both = status_summary(world.ctx, limit=20).attention
    assert [t.name for t in both] == ["Beta", "Alpha"]
    full = {t.name: t for t in status(world.ctx).of_kind("export")}
    assert both[1] == full["Alpha"]
    assert full["Alpha"].details["refreshed_at"] is not None
    assert [t.name for t in summary.segments] == [
        t.name for t in status(world.ctx).of_kind("segment")
    ]
    assert summary.to_dict()["export_counts"]["failure"] == 2


def test_status_and_summary_use_a_fixed_number_of_queries(world: World) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    def queries() -> tuple[int, int]:
        statements.clear()
        status(world.ctx)
        full = len(statements)
        statements.clear()
        status_summary(world.ctx)
        return full, len(statements)

    engine = world.ctx.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        make_export(world.ctx, name="One", segments=("Seg B",))
        _add_run(world, "One", "failure", T0)
        few = queries()
        for i in range(12):
            make_export(world.ctx, name=f"More {i}", segments=("Seg A", "Seg B"))
            _add_run(world, f"More {i}", "failure" if i % 2 else "successful", T0)
        assert queries() == few
    finally:
        event.remove(engine, "before_cursor_execute", count)
