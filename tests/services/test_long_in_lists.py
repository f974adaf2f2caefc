"""A segment whose ``in`` list is longer than the compiler writes out value by value (its values
become a table the query makes from one array): an export of it runs, first and again, through
every way a run reads its members."""

from __future__ import annotations

import json
from pathlib import Path

from segsync.domain.runs import RunStatus
from segsync.segments.compiler import INLINE_IN_VALUES
from segsync.services import runs
from segsync.services.context import ServiceContext
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.segments import SegmentRepository
from tests.services.runs_support import contacts, ctx, in_process, people, setup, sim

__all__ = ["ctx", "sim"]  # fixtures


def test_an_export_of_a_segment_with_a_long_in_list_runs_and_reruns(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(30) + people(20, group="b", start=31))
    groups = ["a", *(f"nobody {i}" for i in range(INLINE_IN_VALUES * 2))]
    definition = {
        "name": "Seg A",
        "rules": [{"conditions": {"attribute": "Grp", "op": "in", "value": groups}}],
    }
    with ctx.db.session() as session:
        repo = SegmentRepository(session)
        segment = repo.get_by_name("Seg A")
        repo.update(segment.id, now=ctx.now(), definition=json.dumps(definition))

    first = runs.run_export(ctx, "Newsletter", tune=in_process(sim))
    second = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert first.status is RunStatus.SUCCESSFUL, first.message
    assert set(contacts(sim)) == {f"p{i}@example.com" for i in range(1, 31)}
    assert second.status is RunStatus.SUCCESSFUL, second.message
    assert second.counts.unchanged == 30
