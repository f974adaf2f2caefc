"""Building blocks for run-engine tests: a data dir made through the real services (a CSV of
profiles, segments, an Autopilot connection to a simulator served over HTTP, an export) and
readers of the simulator's state.

The ``sim`` fixture is a fresh simulator behind the session's loopback server (the root
conftest's ``simulator_host``): adding the connection checks its key over HTTP, as it must, and
a run reaches it over HTTP too — or, tuned with :func:`in_process`, straight through its ASGI
app, with no socket and no thread between the run and the simulator::

    setup(ctx, sim, tmp_path, people(250))
    run = runs.run_export(ctx, "Newsletter", tune=in_process(sim))       # or in_process(sim, fast)
    assert count(stats(sim), "POST /v1/contacts") == 3
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync.destinations.base import ConnectionConfig
from segsync.services.connections import NewConnection, add_connection, connection_id
from segsync.services.context import ServiceContext, open_context
from segsync.services.exports import DataMatching, ExportSettings, MappingLine, create_export
from segsync.services.profiles import import_profiles
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, SimulatorConfig, SimulatorHost
from segsync.storage.repositories.segments import SegmentRepository

API_KEY = "k-0123456789abcdef"
Tuner = Callable[[ConnectionConfig], ConnectionConfig]
COLUMNS = ("id", "Email", "FirstName", "LastName", "Grp", "Score")


@dataclass(frozen=True)
class Person:
    id: int
    email: str | None
    first: str = "Ann"
    last: str = "Lee"
    group: str = "a"  # "a", "b", "ab" (in both segments) or "" (in none)
    score: float | None = 1.0


def people(n: int, group: str = "a", start: int = 1) -> list[Person]:
    """``n`` people with distinct valid emails ``p<id>@example.com``."""
    return [
        Person(i, f"p{i}@example.com", f"First{i}", f"Last{i}", group)
        for i in range(start, start + n)
    ]


def write_profiles(ctx: ServiceContext, path: Path, rows: Iterable[Person]) -> None:
    """Write the people as a CSV and import it as the profile table ``people`` (replacing)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in rows:
            writer.writerow(
                [
                    p.id,
                    "" if p.email is None else p.email,
                    p.first,
                    p.last,
                    p.group,
                    "" if p.score is None else p.score,
                ]
            )
    import_profiles(ctx, path, "people", key="id", profile=True, replace=True)


def segment_definition(name: str, groups: Sequence[str]) -> str:
    return json.dumps(
        {
            "name": name,
            "rules": [
                {"conditions": {"all": [{"attribute": "Grp", "op": "in", "value": list(groups)}]}}
            ],
        }
    )


def create_segments(ctx: ServiceContext) -> None:
    """ "Seg A" = groups a and ab; "Seg B" = groups b and ab."""
    with ctx.db.session() as session:
        repo = SegmentRepository(session)
        repo.create(
            name="Seg A", definition=segment_definition("Seg A", ["a", "ab"]), now=ctx.now()
        )
        repo.create(
            name="Seg B", definition=segment_definition("Seg B", ["b", "ab"]), now=ctx.now()
        )


def connect(
    ctx: ServiceContext,
    sim: RunningSimulator,
    *,
    name: str = "Sim",
    rate_limit: float = 1000.0,
    contract_limit: int = 100_000,
) -> None:
    new = NewConnection(
        name,
        type="autopilot",
        api_key=API_KEY,
        base_url=sim.base_url,
        rate_limit=rate_limit,
        contract_limit=contract_limit,
    )
    add_connection(ctx, new, agree=True)


def make_export(
    ctx: ServiceContext,
    *,
    name: str = "Newsletter",
    segments: Sequence[str] = ("Seg A",),
    removal: str = "mirror",
    connection: str = "Sim",
    list_prefix: str = "",
    hold: tuple[str, str] = ("off", "off"),
) -> None:
    """The export "Newsletter". The blast-radius hold is ``off`` here unless ``hold`` gives
    its thresholds (removals, growth): these tests move big shares of small lists on purpose;
    tests/services/test_hold.py turns it on."""
    matching = DataMatching(
        "Email", "FirstName", "LastName", [MappingLine("custom:float:Score", "Score")]
    )
    create_export(
        ctx,
        ExportSettings(
            name=name,
            connection_id=connection_id(ctx, connection),
            matching=matching,
            segments=list(segments),
            removal=removal,
            list_prefix=list_prefix,
            hold_removals=hold[0],
            hold_growth=hold[1],
        ),
    )


def setup(
    ctx: ServiceContext,
    sim: RunningSimulator,
    tmp_path: Path,
    rows: Iterable[Person],
    *,
    segments: Sequence[str] = ("Seg A",),
    removal: str = "mirror",
    contract_limit: int = 100_000,
    rate_limit: float = 1000.0,
    hold: tuple[str, str] = ("off", "off"),
) -> None:
    write_profiles(ctx, tmp_path / "people.csv", rows)
    create_segments(ctx)
    connect(ctx, sim, contract_limit=contract_limit, rate_limit=rate_limit)
    make_export(ctx, segments=segments, removal=removal, hold=hold)


def fast(config: ConnectionConfig) -> ConnectionConfig:
    """Retries without real waiting between attempts (the rate limit is high in these tests)."""

    async def no_wait(_: float) -> None:
        return None

    return dataclasses.replace(config, sleep=no_wait, backoff_base=0.0, backoff_max=0.0)


def in_process(sim: RunningSimulator, *then: Tuner) -> Tuner:
    """A tuner that sends a run's requests straight to ``sim``'s ASGI app in this process
    (``httpx.ASGITransport``): the same simulator and answers, no socket, no thread. ``then``
    tune the config further (e.g. :func:`fast`)."""

    def tune(config: ConnectionConfig) -> ConnectionConfig:
        local = httpx.ASGITransport(app=sim.simulator.app)
        config = dataclasses.replace(config, transport=local)
        for more in then:
            config = more(config)
        return config

    return tune


def stats(sim: RunningSimulator) -> dict[str, Any]:
    """The simulator's request counters (what ``GET /_sim/stats`` answers)."""
    return sim.simulator.stats.snapshot()


def count(sim_stats: dict[str, Any], route: str, status: str | None = None) -> int:
    """Requests to ``route`` (e.g. ``"POST /v1/contacts"``), of one status or all."""
    by_status: dict[str, int] = sim_stats["requests"].get(route, {})
    if status is not None:
        return by_status.get(status, 0)
    return sum(by_status.values())


def reset_stats(sim: RunningSimulator) -> None:
    sim.simulator.stats.reset()


def contacts(sim: RunningSimulator) -> dict[str, dict[str, Any]]:
    """email → contact (read shape) of every contact in the simulator."""
    return {c["Email"]: c for c in sim.simulator.contacts_snapshot()}


def list_members(sim: RunningSimulator) -> dict[str, set[str]]:
    """list title → member emails."""
    titles = {item.list_id: item.title for item in sim.simulator.state.lists.values()}
    members: dict[str, set[str]] = {title: set() for title in titles.values()}
    for contact in sim.simulator.contacts_snapshot():
        for list_id in contact.get("lists", []):
            members[titles[list_id]].add(contact["Email"])
    return members


@pytest.fixture
def sim(simulator_host: SimulatorHost) -> RunningSimulator:
    """A fresh simulator accepting :data:`API_KEY`, no rate limit, behind the session's
    loopback server."""
    return simulator_host.serve(SimulatorConfig(api_keys=[API_KEY], rate_limit=0, seed=7))


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    """A service context on a fresh data dir (real SQLite and DuckDB files), real clock."""
    with open_context(settings) as services:
        yield services
