"""The people "explain a person" is tested on (service, CLI, API, page): one data dir whose
export really ran twice against the simulator over HTTP.

* ``p1@example.com`` (profile 1): added to Seg A by the first run, its first name updated by the
  second;
* ``p2@example.com`` (profile 2): added by the first run, left the segment, removed by the second;
* ``not-an-email`` (profile 3): set aside as invalid;
* ``dup@example.com``: profiles 4 and 5 (``" Dup@Example.com"``); profile 4 is sent, 5 is merged;
* ``p6@example.com`` (profile 6): exported, then forgotten (erased);
* ``p7@example.com`` (profile 7): in no segment (group ``c``);
* ``=sum@example.com`` (profile 8): a valid email a spreadsheet would read as a formula.
"""

from __future__ import annotations

from pathlib import Path

from segsync.services.context import ServiceContext
from segsync.services.privacy.erasure import forget
from segsync.services.runs import run_export
from segsync.simulator import RunningSimulator
from tests.services.runs_support import Person, fast, setup, write_profiles

PEOPLE = [
    Person(1, "p1@example.com"),
    Person(2, "p2@example.com"),
    Person(3, "not-an-email"),
    Person(4, "dup@example.com", "Dee"),
    Person(5, " Dup@Example.com", "Dan"),
    Person(6, "p6@example.com"),
    Person(7, "p7@example.com", group="c"),
    Person(8, "=sum@example.com"),
]


def build(ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path) -> list[int]:
    """The scenario above; returns the two runs' ids."""
    setup(ctx, sim, tmp_path, PEOPLE)
    first = run_export(ctx, "Newsletter", tune=fast)
    assert first.status == "successful", first.message
    changed = {1: Person(1, "p1@example.com", "Anna"), 2: Person(2, "p2@example.com", group="")}
    moved = [changed.get(p.id, p) for p in PEOPLE]
    write_profiles(ctx, tmp_path / "people.csv", moved)
    second = run_export(ctx, "Newsletter", tune=fast)
    assert second.status == "successful", second.message
    assert (second.counts.removed, second.counts.updated) == (1, 1)
    report = forget(ctx, "p6@example.com", tune=fast)
    assert not report.pending
    return [first.id, second.id]
