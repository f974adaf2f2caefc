"""A connection pointed at another Autopilot account starts its exports' sync afresh; the same
account (a rotated key, a proxy URL) keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from segsync.services.connections import (
    ConnectionEdit,
    connection_id,
    edit_connection,
    test_connection,
)
from segsync.services.context import ServiceContext
from segsync.services.privacy.audit import list_events
from segsync.services.runs import run_export
from segsync.simulator import RunningSimulator, SimulatorConfig, serve_in_thread
from tests.services.runs_support import API_KEY, contacts, ctx, fast, people, setup, sim

__all__ = ["ctx", "sim"]  # fixtures


@pytest.fixture
def other_account() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=99)) as running:
        yield running


def test_moving_the_connection_to_another_account_sends_everyone_there(
    ctx: ServiceContext, sim: RunningSimulator, other_account: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(5))
    assert run_export(ctx, "Newsletter", tune=fast).counts.added == 5

    moved = ConnectionEdit(base_url=other_account.base_url)
    edit_connection(ctx, connection_id(ctx, "Sim"), moved, agree=True)
    run = run_export(ctx, "Newsletter", tune=fast)

    assert run.counts.added == 5
    assert set(contacts(other_account)) == {f"p{i}@example.com" for i in range(1, 6)}
    changed = [e for e in list_events(ctx) if e.action == "connection.account_changed"]
    assert len(changed) == 1
    assert changed[0].details["exports_reset"] == ["Newsletter"]
    assert changed[0].details["previous_instance"] != changed[0].details["instance"]


def test_checking_the_same_account_again_keeps_the_sync_state(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    setup(ctx, sim, tmp_path, people(3))
    assert run_export(ctx, "Newsletter", tune=fast).counts.added == 3
    assert test_connection(ctx, connection_id(ctx, "Sim")).health == "ok"
    same_key = ConnectionEdit(api_key=API_KEY)  # re-entered key, same account
    edit_connection(ctx, connection_id(ctx, "Sim"), same_key, agree=True)

    rerun = run_export(ctx, "Newsletter", tune=fast)
    assert rerun.counts.requests == 1  # the look at the lists (GET /lists)
    assert rerun.counts.unchanged == 3
    assert not [e for e in list_events(ctx) if e.action == "connection.account_changed"]
