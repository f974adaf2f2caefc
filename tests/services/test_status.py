"""Status (T3): every data source, segment and export with its latest status, last update
and next due time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from segsync.domain.permissions import Role
from segsync.domain.runs import RunStatus
from segsync.domain.schedule import ExportMode, ExportSchedule, Recurrence
from segsync.services.exports import ExportEdit, edit_export, export_id
from segsync.services.runs.scheduler import tick
from segsync.services.runs.worker import Worker
from segsync.services.system.status import TaskStatus, status
from tests.services.export_fixtures import acting_as, add_segment
from tests.services.runs_support import fast, make_export, people, sim
from tests.services.schedule_support import DUE, T0, World, daily_at_six, world, write_csv

__all__ = ["sim", "world"]  # fixtures


def _by_name(tasks: list[TaskStatus]) -> dict[str, TaskStatus]:
    return {task.name: task for task in tasks}


def test_status_lists_every_task_with_status_last_update_and_next_due(world: World) -> None:
    ctx = world.ctx
    add_segment(ctx, "Draft", {"attribute": "Grp", "op": "equals", "value": "b"})
    make_export(ctx, name="Own", segments=("Seg B",))
    daily = ExportSchedule(mode=ExportMode.OWN, recurrence=Recurrence.DAILY, start=time(7))
    edit_export(ctx, export_id(ctx, "Own"), ExportEdit(schedule=daily))
    make_export(ctx, name="Manual", segments=("Seg B",))
    off = ExportEdit(schedule=ExportSchedule(mode=ExportMode.OFF))
    edit_export(ctx, export_id(ctx, "Manual"), off)
    daily_at_six(ctx)
    write_csv(world.dir / "extras.csv", people(4), columns=("id", "Email"))  # changed since

    report = status(acting_as(ctx, Role.VIEWER))

    assert report.system.enabled is True
    assert report.system.next_due == DUE
    assert [t.kind for t in report.tasks] == ["data_source"] * 2 + ["segment"] * 3 + ["export"] * 3
    sources = _by_name(report.of_kind("data_source"))
    assert (sources["people"].status, sources["people"].last_update) == ("imported", T0)
    assert sources["people"].details["rows"] == 15
    assert sources["extras"].status == "changed"
    assert sources["people"].next_due == DUE
    segments = _by_name(report.of_kind("segment"))
    assert (segments["Seg A"].status, segments["Seg A"].details["members"]) == ("active", 10)
    assert segments["Seg A"].next_due == DUE
    assert (segments["Draft"].status, segments["Draft"].next_due) == ("draft", None)
    exports = _by_name(report.of_kind("export"))
    assert (exports["Newsletter"].status, exports["Newsletter"].next_due) == ("never run", DUE)
    assert exports["Own"].next_due == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert exports["Manual"].next_due is None
    assert exports["Manual"].details["schedule"] == "Off (manual runs only)"
    assert report.to_dict()["tasks"][0]["kind"] == "data_source"


def test_status_follows_a_scheduled_refresh_and_its_runs(world: World) -> None:
    ctx = world.ctx
    daily_at_six(ctx)
    (world.dir / "extras.csv").unlink()

    world.clock.at = DUE
    tick(ctx)
    world.clock.at = DUE + timedelta(minutes=2)
    (done,) = [run for run in iter(Worker(ctx, tune=fast).run_once, None)]
    report = status(ctx)

    assert done.status is RunStatus.SUCCESSFUL
    assert report.system.last_refresh_due == "2026-03-29T05:00:00Z"
    assert report.system.last_refresh_state == "done"
    assert report.system.next_due == DUE + timedelta(days=1)
    sources = _by_name(report.of_kind("data_source"))
    assert sources["extras"].status == "missing"
    segments = _by_name(report.of_kind("segment"))
    assert segments["Seg A"].last_update == DUE
    newsletter = _by_name(report.of_kind("export"))["Newsletter"]
    assert newsletter.status == "successful"
    assert newsletter.last_update == DUE + timedelta(minutes=2)
    assert newsletter.details["latest_run"] == done.id
    assert newsletter.next_due == DUE + timedelta(days=1)
