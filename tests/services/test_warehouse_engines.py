"""The engine conformance suite's use-case half (docs/warehouses.md): the whole job (a CSV
import, segments, an export run to the simulator) and ``profiles sample|register|relate`` give
the same results on DuckDB, PostgreSQL and Spark (local mode). The segment operators' half is
``tests/segments`` (its ``engine`` fixture runs every test on the three engines)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from segsync.domain.runs import RunStatus
from segsync.profiles import spark
from segsync.services import profiles, runs, segments
from segsync.services.context import ServiceContext, open_context
from segsync.services.segments import members as segment_members
from segsync.settings import Settings
from segsync.simulator import RunningSimulator
from tests.services.runs_support import (
    contacts,
    in_process,
    list_members,
    people,
    setup,
    sim,
    write_profiles,
)

__all__ = ["sim"]  # fixtures

ENGINES = [
    "duckdb",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("spark", marks=pytest.mark.spark),
]


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ctx(
    engine_name: str,
    request: pytest.FixtureRequest,
    settings: Settings,
    frozen_now: Callable[[], datetime],
) -> Iterator[ServiceContext]:
    """A service context whose profile engine is a fresh DuckDB file, PostgreSQL database or
    Spark database."""
    url = None
    if engine_name == "postgres":
        url = request.getfixturevalue("postgres_database")("warehouse")
    elif engine_name == "spark":
        url = request.getfixturevalue("spark_session")("warehouse")
    with open_context(settings.model_copy(update={"profiles_url": url}), now=frozen_now) as c:
        yield c


def test_the_whole_job_sends_the_same_contacts_and_lists_on_every_engine(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    crowd = people(12, "a") + people(8, "b", start=13) + people(5, "ab", start=21)
    crowd += people(3, "", start=26)
    setup(ctx, sim, tmp_path, crowd, segments=("Seg A", "Seg B"))

    first = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert first.status is RunStatus.SUCCESSFUL
    assert first.counts.added == 25  # everyone but the three in no segment
    emails = {p.id: p.email for p in crowd}
    assert list_members(sim) == {
        "Seg A": {emails[i] for i in [*range(1, 13), *range(21, 26)]},
        "Seg B": {emails[i] for i in range(13, 26)},
    }
    assert contacts(sim)["p7@example.com"]["FirstName"] == "First7"

    crowd[0] = crowd[0].__class__(1, "p1@example.com", "Changed", "Lee", "b")
    write_profiles(ctx, tmp_path / "people.csv", crowd)
    second = runs.run_export(ctx, "Newsletter", tune=in_process(sim))

    assert (second.counts.added, second.counts.updated, second.counts.unchanged) == (0, 1, 24)
    assert contacts(sim)["p1@example.com"]["FirstName"] == "Changed"
    assert "p1@example.com" not in list_members(sim)["Seg A"]
    assert "p1@example.com" in list_members(sim)["Seg B"]


VIP = pa.table(
    {
        "VipId": pa.array([3, 5, 8, 9, 99], pa.int64()),
        "Level": ["gold", "silver", "", None, "x"],
    }
)
"""A table made by the engine's own tools (not by segsync), registered in place: customers 3
and 5 have a level, 8's is blank, 9's missing, and 99 is no customer."""


def _create_natively(ctx: ServiceContext, engine_name: str) -> None:
    engine = ctx.profiles
    if engine_name == "duckdb":
        con = engine.backend.con
        con.register("vip_data", VIP)
        con.execute("CREATE TABLE vip AS SELECT * FROM vip_data")
        con.unregister("vip_data")
    elif engine_name == "postgres":
        with psycopg.connect(engine.url.replace("postgres://", "postgresql://")) as pg:
            pg.execute('CREATE TABLE vip ("VipId" bigint, "Level" text)')
            for row in VIP.to_pylist():
                pg.execute("INSERT INTO vip VALUES (%s, %s)", (row["VipId"], row["Level"]))
    else:  # a Parquet directory copied into the warehouse is a table there
        warehouse = spark.place_of(engine.backend).warehouse
        assert warehouse is not None
        (warehouse / "vip").mkdir()
        pq.write_table(VIP, warehouse / "vip" / "part-0.parquet")


def test_sample_register_and_relate_work_alike_on_every_engine(
    ctx: ServiceContext, engine_name: str
) -> None:
    report = profiles.load_sample(ctx, profiles=40, seed=5)
    customers, orders = ctx.profiles.table("customers"), ctx.profiles.table("orders")
    assert (report.customers, ctx.profiles.row_count("customers")) == (40, 40)
    assert report.orders == ctx.profiles.row_count("orders")
    # The oracle: orders per customer counted by Arrow, not by the engine.
    counted = (
        orders.select("CustomerId")
        .to_pyarrow()
        .group_by("CustomerId")
        .aggregate([("CustomerId", "count")])
    )
    frequent = pc.filter(counted["CustomerId"], pc.greater_equal(counted["CustomerId_count"], 6))
    segments.create_segment(
        ctx,
        "name: Frequent\nrules:\n  - related: orders\n    having:\n"
        "      {aggregate: count, op: greater_or_equal, value: 6}\n",
    )
    assert segment_members.count_segment(ctx, "Frequent") == len(frequent) > 0
    assert customers.columns[0] == "CustomerId"

    _create_natively(ctx, engine_name)
    vip = profiles.register_table(ctx, "vip", key="VipId")
    assert (vip.rows, vip.format, set(vip.columns)) == (5, "table", {"VipId", "Level"})
    _, created = profiles.relate(ctx, "vip", "VipId", "customers", "CustomerId")
    assert created
    segments.create_segment(
        ctx,
        "name: Leveled\nrules:\n  - related: vip\n    conditions:\n"
        "      {attribute: vip.Level, op: is_not_empty}\n",
    )
    preview = segment_members.preview_segment(ctx, "Leveled")
    assert [row["CustomerId"] for row in preview.rows] == [3, 5]
