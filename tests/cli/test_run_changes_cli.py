"""``segsync runs changes`` and the results per list of ``segsync runs show``, on the runs of
tests/services/people_support.py (the simulator over HTTP)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.cli.test_explain_cli import Invoke, invoke, sim

__all__ = ["invoke", "sim"]  # fixtures


def test_runs_show_prints_the_results_per_list(invoke: Invoke) -> None:
    shown = invoke("runs", "show", "2", "--json")
    assert shown.exit_code == 0, shown.output
    lists = {item["list"]: item for item in json.loads(shown.stdout)["lists"]}
    assert (lists["Seg A"]["removed"], lists["(contact updated, no new list)"]["updated"]) == (1, 1)
    text = invoke("runs", "show", "2")
    assert "Results per list" in text.stdout
    assert "(contact updated, no new list)" in text.stdout


def test_runs_changes_prints_filters_and_writes_csv(invoke: Invoke, tmp_path: Path) -> None:
    printed = invoke("runs", "changes", "2")
    assert printed.exit_code == 0, printed.output
    assert 'FirstName: "Ann" → "Anna"' in printed.stdout
    assert "p2@example.com" in printed.stdout
    only = invoke("runs", "changes", "1", "--list", "Seg A", "--action", "added", "--json")
    assert only.exit_code == 0, only.output
    items = json.loads(only.stdout)["items"]
    assert {i["profile_id"] for i in items} == {"1", "2", "4", "8"}
    target = tmp_path / "out" / "changes.csv"
    written = invoke("runs", "changes", "1", "--csv", str(target))
    assert written.exit_code == 0, written.output
    with target.open(encoding="utf-8") as handle:
        emails = {row["email"] for row in csv.DictReader(handle)}
    assert "'=sum@example.com" in emails


def test_runs_changes_names_what_is_wrong(invoke: Invoke) -> None:
    wrong_list = invoke("runs", "changes", "1", "--list", "Seg Z")
    assert wrong_list.exit_code == 2
    assert "--list: no list 'Seg Z' in this run's change log; lists of this run: Seg A" in (
        wrong_list.output
    )
    wrong_action = invoke("runs", "changes", "1", "--action", "deleted")
    assert wrong_action.exit_code == 2
    assert "action: must be one of added, updated, removed, refused" in wrong_action.output
