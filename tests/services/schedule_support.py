"""Building blocks for scheduler and status tests: an injected clock and a data dir with a
profile CSV, an unchanging related CSV, two active segments, a connection to the simulator and
an export — everything through the real services."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segsync.services.context import ServiceContext, open_context
from segsync.services.profiles import import_profiles
from segsync.services.runs.schedule import schedule_from_options, set_schedule
from segsync.services.segments import refresh_segments
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from tests.services.runs_support import (
    COLUMNS,
    Person,
    connect,
    create_segments,
    make_export,
    people,
    sim,
)

__all__ = ["sim"]  # the fixture `world` uses

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Lisbon is on WET (UTC+0) until 29 March
DUE = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 06:00 Lisbon on the 29th is WEST (UTC+1)


class Clock:
    """An injected clock: ``at`` is now; with ``step`` every reading moves it on."""

    def __init__(self, at: datetime, step: timedelta = timedelta(0)) -> None:
        self.at = at
        self.step = step

    def __call__(self) -> datetime:
        value = self.at
        self.at += self.step
        return value


@dataclass
class World:
    ctx: ServiceContext
    clock: Clock
    settings: Settings
    dir: Path


def write_csv(path: Path, rows: Sequence[Person], *, columns: Sequence[str] = COLUMNS) -> None:
    values = {
        "id": lambda p: p.id,
        "Email": lambda p: p.email or "",
        "FirstName": lambda p: p.first,
        "LastName": lambda p: p.last,
        "Grp": lambda p: p.group,
        "Score": lambda p: p.score,
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for person in rows:
            writer.writerow([values[column](person) for column in columns])


@pytest.fixture
def world(settings: Settings, tmp_path: Path, sim: RunningSimulator) -> Iterator[World]:
    """People (a CSV, the profile table) and an unchanging ``extras`` CSV; segments "Seg A"
    and "Seg B" refreshed once (active); a connection to the simulator; the export
    "Newsletter" (Seg A, with the system refresh). The clock stands at T0."""
    clock = Clock(T0)
    with open_context(settings, now=clock) as ctx:
        write_csv(tmp_path / "people.csv", people(10, "a") + people(5, "b", start=11))
        import_profiles(ctx, tmp_path / "people.csv", "people", key="id", profile=True)
        write_csv(tmp_path / "extras.csv", people(3), columns=("id", "Email"))
        import_profiles(ctx, tmp_path / "extras.csv", "extras", key="id")
        create_segments(ctx)
        refresh_segments(ctx, all_segments=True)
        connect(ctx, sim)
        make_export(ctx)
        yield World(ctx, clock, settings, tmp_path)


def daily_at_six(ctx: ServiceContext, times: str = "06:00") -> None:
    set_schedule(
        ctx, schedule_from_options(daily=True, weekly=None, times=times, tz="Europe/Lisbon")
    )
