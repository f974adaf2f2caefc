"""``segsync demo`` runs the whole job against the simulator and shows the second run idle."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from segsync.cli import app


def test_demo_exports_two_segments_then_sends_nothing_on_the_second_run(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--profiles", "600", "--rate-limit", "1000", "--dir", str(demo_dir)]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "First run: everyone is sent" in out
    assert "nothing changed: nothing was sent" in out
    assert "Lisbon and Porto customers" in out
    assert "Loyal big spenders" in out

    listing = CliRunner().invoke(app, ["--data-dir", str(demo_dir), "runs", "list", "--json"])
    assert listing.exit_code == 0, listing.output
    runs = sorted(json.loads(listing.output), key=lambda run: run["id"])
    assert [run["status"] for run in runs] == ["successful", "successful"]
    first, second = (run["counts"] for run in runs)
    assert first["added"] > 0
    assert first["requests"] > 0
    assert second["requests"] == 1  # the look at the lists (GET /lists): nothing sent
    assert second["unchanged"] == first["added"]


def test_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "keep.txt").write_text("important")
    result = CliRunner().invoke(app, ["demo", "--profiles", "100", "--dir", str(precious)])
    assert result.exit_code == 2
    assert (precious / "keep.txt").read_text() == "important"
