"""``scripts/soak.py --keep-failed``: a failed phase's directory is kept, with what the simulator
held, for diagnosis; a phase that passed leaves nothing behind. The phase and its measurement are
stand-ins here (a real failure cannot be caused on purpose); ``tests/e2e/test_soak.py`` runs the
real soak."""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_script", ROOT / "scripts" / "soak.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Sim:
    base_url = "http://127.0.0.1:1/v1"

    def contacts(self) -> list[dict[str, Any]]:
        return [{"Email": "p1@soak.example", "FirstName": "Pedro"}]

    def lists(self) -> list[dict[str, Any]]:
        return [{"list_id": "contactlist_1", "title": "Soak: Lisbon"}]


class _Phase:
    made: ClassVar[list[_Phase]] = []

    def __init__(self, name: str, root: Path, rng: random.Random, **_: Any) -> None:
        self.root, self.sim, self.closed = root, _Sim(), False
        (root / "data").mkdir()
        _Phase.made.append(self)

    def setup(self) -> None:
        pass

    def run(self, budget: Any) -> None:
        pass

    def progress(self) -> str:
        return "done"

    def close(self) -> None:
        self.closed = True


def _args(keep: bool) -> argparse.Namespace:
    return argparse.Namespace(
        profiles=10, workers_share=0.0, faults=("none",), destination="autopilot",
        undo_share=0.0, iterations=1, kills=1, duration=1.0, no_baseline=True, keep_failed=keep,
    )  # fmt: skip


@pytest.fixture
def soak(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    module = _soak()
    monkeypatch.setattr(module, "Phase", _Phase)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _Phase.made.clear()
    return module


def _measured(module: ModuleType, wrong: int) -> Any:
    from soaklib.report import MUST_BE_ZERO

    values = dict.fromkeys(MUST_BE_ZERO, 0) | {"wrong_fields": wrong}
    return lambda phase, with_baseline: module.Figures("sqlite", values, [])


def test_a_failed_phase_is_kept_with_what_the_simulator_held(
    soak: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soak, "measure", _measured(soak, wrong=2))
    figures = soak.run_phase("sqlite", _args(keep=True), 1.0, random.Random(1))

    assert figures.failures == ["wrong_fields"]
    phase = _Phase.made[0]
    assert phase.closed
    assert (phase.root / "data").is_dir()
    held = json.loads((phase.root / "simulator.json").read_text())
    assert held["contacts"][0]["FirstName"] == "Pedro"
    assert held["lists"][0]["title"] == "Soak: Lisbon"


def test_a_phase_that_passed_or_one_not_asked_to_keep_leaves_nothing(
    soak: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soak, "measure", _measured(soak, wrong=0))
    soak.run_phase("sqlite", _args(keep=True), 1.0, random.Random(1))
    monkeypatch.setattr(soak, "measure", _measured(soak, wrong=2))
    soak.run_phase("sqlite", _args(keep=False), 1.0, random.Random(1))

    assert len(_Phase.made) == 2
    assert all(not phase.root.exists() for phase in _Phase.made)


def test_a_phase_that_crashed_is_kept(soak: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(phase: Any, with_baseline: bool) -> Any:
        raise RuntimeError("the comparison itself failed")

    monkeypatch.setattr(soak, "measure", broken)
    with pytest.raises(RuntimeError):
        soak.run_phase("sqlite", _args(keep=True), 1.0, random.Random(1))

    assert _Phase.made[0].root.is_dir()
    assert not (_Phase.made[0].root / "simulator.json").exists()
