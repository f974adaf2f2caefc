"""Spark as the profile engine (docs/warehouses.md): what ``pyspark://`` URLs mean, tables that
outlive the process that wrote them, members streamed back in order through Parquet, and the
extras named when a warehouse's backend is missing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from segsync.errors import InputError
from segsync.profiles import spark
from segsync.profiles.engine import ProfileEngine
from segsync.segments.evaluate import member_ids, stream_members

# --- URLs (no Spark started) -------------------------------------------------------------------


def test_local_keeps_its_tables_in_the_data_dir(tmp_path: Path) -> None:
    place = spark.parse_url("pyspark://local", tmp_path)

    assert place.master == "local[*]"
    assert place.warehouse == tmp_path / "spark-warehouse"
    assert place.exchange == tmp_path / "spark-warehouse" / "_segsync_exchange"
    assert place.conf["spark.sql.warehouse.dir"] == str((tmp_path / "spark-warehouse").resolve())
    assert place.database is None
    assert int(place.conf["spark.sql.shuffle.partitions"]) == 2 * (os.cpu_count() or 1)


def test_a_path_a_master_and_settings_come_from_the_url(tmp_path: Path) -> None:
    place = spark.parse_url(
        f"pyspark://local{tmp_path}/wh?master=local[3]&database=crm"
        "&spark.sql.shuffle.partitions=8&exchange=/mnt/shared/x",
        None,
    )

    assert (place.master, place.database, place.warehouse) == ("local[3]", "crm", tmp_path / "wh")
    assert place.conf["spark.sql.shuffle.partitions"] == "8"
    assert place.exchange == Path("/mnt/shared/x")


def test_a_host_is_a_standalone_master_whose_metastore_keeps_the_tables() -> None:
    place = spark.parse_url("pyspark://spark-master.internal?database=crm", None)

    assert place.master == "spark://spark-master.internal:7077"
    assert place.warehouse is None  # the cluster's own warehouse
    assert spark.parse_url("pyspark://h:7078", None).master == "spark://h:7078"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pyspark://local?threads=4", "option 'threads' is unknown"),
        ("pyspark://local/x?database=a-b", "database='a-b' is not valid"),
        ("pyspark://local", "names no warehouse directory: use pyspark://local/PATH"),
    ],
)
def test_wrong_urls_are_refused_naming_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        spark.parse_url(url, None)


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("bigquery://my-project/my_dataset", "bigquery"),
        ("snowflake://user:secret@account/db/schema?warehouse=wh", "snowflake"),
        ("trino://user@trino.internal:8080/hive/crm", "trino"),
    ],
)
def test_a_warehouse_without_its_extra_names_the_extra(url: str, extra: str) -> None:
    with pytest.raises(InputError) as caught:
        ProfileEngine.connect(url)

    message = str(caught.value)
    assert f"pip install 'segsync[{extra}]'" in message
    assert "secret" not in message  # the password is masked


def test_a_missing_java_is_named_with_the_package_to_install() -> None:
    error = RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending")

    message = spark._start_failure(error)

    assert "openjdk-17-jre-headless" in message
    assert "JAVA_GATEWAY_EXITED" in message


# --- A real Spark (local mode) -----------------------------------------------------------------

ROWS = 500
PEOPLE = pa.table(
    {
        "Id": pa.array(range(ROWS, 0, -1), pa.int64()),  # written in reverse order
        "Name": [f"p{i}" for i in range(ROWS, 0, -1)],
    }
)


def _two_processes(new_url: Callable[[str], str]) -> tuple[ProfileEngine, ProfileEngine]:
    """An engine that imported PEOPLE, and one standing for another process on the same
    warehouse: a process's catalog starts empty, and so does a new database's."""
    url = new_url("first")
    first = ProfileEngine.connect(url)
    first.import_arrow(PEOPLE, "people", key="Id")
    return first, ProfileEngine.connect(url.replace("database=first", "database=second"))


def test_tables_outlive_the_process_that_wrote_them(
    spark_session: Callable[[str], str],
) -> None:
    first, later = _two_processes(spark_session)
    first.close()

    assert later.list_tables() == ["people"]
    assert later.row_count("people") == ROWS
    later.drop_table("people")
    assert later.list_tables() == []
    warehouse = spark.place_of(later.backend).warehouse
    assert warehouse is not None
    assert not (warehouse / "people").exists()


def test_members_stream_back_in_key_order_from_several_files(
    spark_session: Callable[[str], str],
) -> None:
    engine = ProfileEngine.connect(spark_session("stream"))
    engine.import_arrow(PEOPLE, "people", key="Id")
    people = engine.table("people")
    members = people.filter(people.Id % 3 != 0).select("Id")

    batches = list(stream_members(members, people, "Id", ["Name"], batch_size=40))

    ids = [i for batch in batches for i in batch.column("Id").to_pylist()]
    assert ids == [i for i in range(1, ROWS + 1) if i % 3 != 0]
    assert {batch.num_rows for batch in batches[:-1]} == {40}  # whole batches across files
    assert batches[0].schema == pa.schema([("Id", pa.int64()), ("Name", pa.string())])
    assert sorted(int(v) for a in member_ids(members) for v in a.to_pylist()) == ids
    exchange = spark.place_of(engine.backend).exchange
    assert exchange is not None
    assert list(exchange.iterdir()) == []  # every exchange directory was removed


def test_a_table_replaced_by_another_process_is_read_anew(
    spark_session: Callable[[str], str],
) -> None:
    writer, reader = _two_processes(spark_session)
    assert reader.row_count("people") == ROWS  # its listing of the table's files is cached now

    writer.import_arrow(PEOPLE.slice(0, 7), "people", key="Id", replace=True)

    assert reader.row_count("people") == 7
