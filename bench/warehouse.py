"""The warehouse path: segments on DuckDB and on Spark (local mode) side by side, and bulk imports.

Generates sample profiles (5,000,000 by default) and their orders (4 per profile: 20,000,000)
with ``generate_sample``, writes both as Parquet, then on each engine — a DuckDB file and
``pyspark://local`` (a warehouse directory in a temporary directory) — prints:

- the import of both Parquet files (``ProfileEngine.import_file``: staged, key checked, swapped
  in), with rows/s;
- for three segments (attribute-only; nested any/all with relative dates; a related rule, a
  count or an average over the last 180 days' web and app orders): ``count``, and the export's
  read phase — every member with the four mapped columns streamed out as Arrow batches
  (``stream_members``), with rows/s and the most memory pyarrow's pool held meanwhile beyond
  what it held before (flat: a few batches, whatever the segment's size; DuckDB's batches live
  in DuckDB's own memory, which this does not count);
- Spark's time over DuckDB's for each.

Then a 1,000,000-row CSV of profiles is imported into PostgreSQL (``COPY``), printing its time and
rows/s (targets: <= 20 s, >= 50,000 rows/s); skipped with a note when PostgreSQL is unreachable.

Target: the whole bench in <= 5 minutes (about 3.6 minutes on this project's 2-core machine).
``--scale`` multiplies the profile and order counts for a smaller or busier machine
(``--scale 0.4``: 2M profiles + 8M orders); the scale is printed.
Spark runs with ``--spark-master`` (``local[*]``) and ``--spark-memory`` for its driver.

    .venv/bin/python bench/warehouse.py [--scale 1] [--profiles 5000000] [--skip-spark]
        [--csv-rows 1000000] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg import sql

from segsync.domain.catalog import Catalog, Relationship
from segsync.domain.segment_definition import SegmentDefinition, definition_from_dict
from segsync.profiles.engine import ProfileEngine
from segsync.profiles.sample import SAMPLE_TODAY, generate_sample
from segsync.segments.compiler import compile_segment
from segsync.segments.evaluate import count, stream_members

NOW = datetime(SAMPLE_TODAY.year, SAMPLE_TODAY.month, SAMPLE_TODAY.day, 12, tzinfo=UTC)
MAPPED = ["Email", "FirstName", "LastName", "LifetimeValue"]
"""The columns an export maps (email, names, one custom field): what the read phase reads."""
SEGMENTS: list[SegmentDefinition] = [
    definition_from_dict(raw)
    for raw in (
        {
            "name": "attribute-only",
            "rules": [
                {
                    "conditions": {
                        "all": [
                            {"attribute": "City", "op": "in", "value": ["lisbon", "porto"]},
                            {"attribute": "LifetimeValue", "op": "greater_than", "value": 150},
                            {"attribute": "IsSubscribed", "op": "is_true"},
                        ]
                    }
                }
            ],
        },
        {
            "name": "nested",
            "rules": [
                {
                    "conditions": {
                        "any": [
                            {
                                "all": [
                                    {"attribute": "Country", "op": "equals", "value": "portugal"},
                                    {"attribute": "LoyaltyTier", "op": "in", "value": ["Gold"]},
                                ]
                            },
                            {
                                "all": [
                                    {
                                        "attribute": "BirthDate",
                                        "op": "before",
                                        "value": "1950-01-01",
                                    },
                                    {
                                        "attribute": "SignupDate",
                                        "op": "within_last",
                                        "value": {"months": 6},
                                    },
                                ]
                            },
                            {"attribute": "Email", "op": "ends_with", "value": "7@example.org"},
                        ]
                    }
                }
            ],
        },
        {
            "name": "related",
            "rules": [
                {
                    "related": "orders",
                    "conditions": {
                        "all": [
                            {"attribute": "orders.Channel", "op": "in", "value": ["web", "app"]},
                            {
                                "attribute": "orders.OrderDate",
                                "op": "within_last",
                                "value": {"days": 180},
                            },
                        ]
                    },
                    "having": {
                        "any": [
                            {"aggregate": "count", "op": "greater_or_equal", "value": 3},
                            {
                                "aggregate": "avg",
                                "attribute": "orders.Amount",
                                "op": "greater_than",
                                "value": 120,
                            },
                        ]
                    },
                }
            ],
        },
    )
]


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def per_second(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "-"


def run_engine(label: str, engine: ProfileEngine, files: dict[str, Path]) -> dict[str, float]:
    """Import, then count and stream each segment; the figures by name."""
    figures: dict[str, float] = {}
    for table, key in (("customers", "CustomerId"), ("orders", "OrderId")):
        result, seconds = timed(lambda t=table, k=key: engine.import_file(files[t], t, key=k))
        figures[f"import {table}"] = seconds
        print(
            f"  {label} import {table}: {result.rows:,} rows in {seconds:.1f} s "
            f"({per_second(result.rows, seconds)})"
        )
    catalog = Catalog(
        "customers",
        "CustomerId",
        {name: engine.table_info(name) for name in ("customers", "orders")},
        [Relationship("orders", "CustomerId", "customers", "CustomerId")],
    )
    profile = engine.table("customers")
    for definition in SEGMENTS:
        members = compile_segment(definition, catalog, engine.table, NOW)
        size, counting = timed(lambda m=members: count(m))

        held = [0]

        def read(m: Any = members, held: list[int] = held) -> int:
            rows, base = 0, pa.total_allocated_bytes()
            for batch in stream_members(m, profile, "CustomerId", MAPPED):
                rows += batch.num_rows
                held[0] = max(held[0], pa.total_allocated_bytes() - base)
            return rows

        streamed, reading = timed(read)
        assert streamed == size, f"{label} {definition.name}: streamed {streamed}, counted {size}"
        figures[f"count {definition.name}"] = counting
        figures[f"read {definition.name}"] = reading
        print(
            f"  {label} {definition.name}: {size:,} members; count {counting:.2f} s; "
            f"read phase {reading:.2f} s ({per_second(size, reading)}; pyarrow's pool held "
            f"at most {held[0] / 1e6:.1f} MB more)"
        )
    return figures


def postgres_csv_import(admin_url: str, csv_path: Path, rows: int) -> None:
    name = f"segsync_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as err:
        print(f"PostgreSQL CSV import: skipped ({admin_url} unreachable: {err})")
        return
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = ProfileEngine.connect(url)
        try:
            result, seconds = timed(
                lambda: engine.import_file(csv_path, "customers", key="CustomerId")
            )
        finally:
            engine.close()
        verdict = "ok" if seconds <= 20 and result.rows / seconds >= 50_000 else "MISSED"
        megabytes = csv_path.stat().st_size / 1e6
        print(
            f"PostgreSQL CSV import (COPY): {result.rows:,} rows ({megabytes:.0f} MB) in "
            f"{seconds:.1f} s = {per_second(result.rows, seconds)} "
            f"[targets <= 20 s, >= 50,000 rows/s: {verdict}]"
        )
        assert result.rows == rows
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=5_000_000)
    parser.add_argument("--orders-per-profile", type=float, default=4.0)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies the profile (and order) counts"
    )
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--spark-memory", default="6g")
    args = parser.parse_args()
    began = time.perf_counter()
    scale = args.scale
    profiles = max(1, int(args.profiles * scale))
    print(
        f"scale {scale:g} (on {os.cpu_count()} cores): {profiles:,} profiles, "
        f"~{args.orders_per_profile:g} orders each"
    )

    (customers, orders), seconds = timed(
        lambda: generate_sample(profiles, 42, orders_per_profile=args.orders_per_profile)
    )
    print(
        f"generated {customers.num_rows:,} profiles + {orders.num_rows:,} orders in {seconds:.1f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = {"customers": root / "customers.parquet", "orders": root / "orders.parquet"}
        pq.write_table(customers, files["customers"])
        pq.write_table(orders, files["orders"])
        csv_rows = min(args.csv_rows, customers.num_rows)
        csv_path = root / "customers.csv"
        pa_csv.write_csv(customers.slice(0, csv_rows), csv_path)
        del customers, orders

        print("DuckDB (a file):")
        duck = ProfileEngine.connect(f"duckdb://{root / 'profiles.duckdb'}")
        try:
            duck_figures = run_engine("duckdb", duck, files)
        finally:
            duck.close()

        if not args.skip_spark:
            url = (
                f"pyspark://local{root / 'spark-warehouse'}?master={args.spark_master}"
                f"&spark.driver.memory={args.spark_memory}"
            )
            print(f"Spark ({args.spark_master}):")
            (spark, started) = timed(lambda: ProfileEngine.connect(url))
            print(f"  spark session started in {started:.1f} s")
            spark_figures = run_engine("spark", spark, files)
            spark.close()
            print("side by side (seconds; spark / duckdb):")
            for name, duck_seconds in duck_figures.items():
                spark_seconds = spark_figures[name]
                ratio = spark_seconds / duck_seconds if duck_seconds else float("inf")
                print(
                    f"  {name:<22} duckdb {duck_seconds:7.2f}  spark {spark_seconds:7.2f}  "
                    f"x{ratio:.1f}"
                )

        postgres_csv_import(args.postgres, csv_path, csv_rows)
    total = time.perf_counter() - began
    verdict = "ok" if total <= 300 else "MISSED"
    print(f"total {total:.0f} s [target <= 300 s: {verdict}] at scale {scale:g}")


if __name__ == "__main__":
    main()
