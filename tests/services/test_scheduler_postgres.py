"""Two schedulers on one PostgreSQL metadata DB, ticking at the same instant in parallel:
one system refresh, one run per export and due time (T1, E8)."""

from __future__ import annotations

import threading
from datetime import time

from segsync.domain.schedule import ExportMode, ExportSchedule, Recurrence
from segsync.services.context import open_context
from segsync.services.exports import DataMatching, ExportSettings, create_export
from segsync.services.runs.schedule import schedule_from_options, set_schedule
from segsync.services.runs.scheduler import TickReport, tick
from segsync.services.segments import refresh_segments
from segsync.settings import Settings
from segsync.storage.repositories.runs import RunRepository
from tests.services.export_fixtures import add_connection, with_sample
from tests.services.schedule_support import DUE, T0


def test_two_schedulers_racing_on_postgres_queue_each_run_once(
    settings: Settings, clean_postgres_url: str
) -> None:
    pg = settings.model_copy(update={"database_url": clean_postgres_url})
    with open_context(pg, now=lambda: T0) as ctx:
        with_sample(ctx, profiles=60)
        refresh_segments(ctx, all_segments=True)
        main = add_connection(ctx, "Main")
        matching = DataMatching("Email")
        create_export(ctx, ExportSettings("System", main, matching, ["Gold"]))
        own = ExportSchedule(
            mode=ExportMode.OWN, recurrence=Recurrence.DAILY, start=time(5), tz="UTC"
        )
        create_export(ctx, ExportSettings("Own", main, matching, ["Subscribed"], schedule=own))
        set_schedule(
            ctx, schedule_from_options(daily=True, weekly=None, times="06:00", tz="Europe/Lisbon")
        )

    barrier = threading.Barrier(2)
    reports: list[TickReport] = []
    errors: list[BaseException] = []

    def scheduler(name: str) -> None:
        try:
            with open_context(pg, now=lambda: DUE) as own_ctx:
                barrier.wait()
                reports.append(tick(own_ctx, scheduler=name))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=scheduler, args=(f"s{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(reports) == 2
    refreshed = [r for r in reports if r.system_refresh is not None]
    assert len(refreshed) == 1
    with open_context(pg) as ctx, ctx.db.session() as session:
        runs = RunRepository(session).list()
    assert sorted((r.export_name, r.due_at) for r in runs) == [("Own", DUE), ("System", DUE)]
    queued_by = sorted(r.export_name for report in reports for r in report.runs)
    assert queued_by == ["Own", "System"]
