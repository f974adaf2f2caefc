"""Profile use cases: import with data-source records, the one profile table, relate, schema,
catalog, sample data."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from segsync.domain.catalog import AttrType, Relationship
from segsync.errors import Conflict, InputError, NotFound
from segsync.services import profiles
from segsync.services.context import ServiceContext, open_context
from segsync.settings import Settings
from segsync.storage.repositories.profiles import DataSourceRepository
from tests.conftest import FROZEN_NOW

CUSTOMERS = "CustomerId,City,Tier\n1,Lisbon,Gold\n2,Porto,Silver\n3,Lisbon,Bronze\n"
ORDERS = "OrderId,CustomerId,Amount\n10,1,5.5\n11,1,7\n12,3,1\n"


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(ctx: ServiceContext, tmp_path: Path) -> None:
    profiles.import_profiles(
        ctx,
        _file(tmp_path, "customers.csv", CUSTOMERS),
        "customers",
        key="CustomerId",
        profile=True,
    )
    profiles.import_profiles(ctx, _file(tmp_path, "orders.csv", ORDERS), "orders", key="OrderId")


def test_import_records_the_data_source_with_its_fingerprint(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    path = _file(tmp_path, "customers.csv", CUSTOMERS)
    report = profiles.import_profiles(
        service_context, path, "customers", key="CustomerId", profile=True
    )
    assert (report.rows, report.is_profile, report.key) == (3, True, "CustomerId")
    with service_context.db.session() as session:
        record = DataSourceRepository(session).get("customers")
    assert record.is_profile
    assert record.source_path == str(path.resolve())
    assert record.imported_at == FROZEN_NOW
    assert record.row_count == 3
    assert record.fingerprint is not None
    assert record.fingerprint.size == len(CUSTOMERS)
    assert record.fingerprint.sha256 == hashlib.sha256(CUSTOMERS.encode()).hexdigest()


def test_the_profile_table_needs_a_key(service_context: ServiceContext, tmp_path: Path) -> None:
    path = _file(tmp_path, "customers.csv", CUSTOMERS)
    with pytest.raises(InputError, match="needs a key: add --key COLUMN"):
        profiles.import_profiles(service_context, path, "customers", profile=True)


def test_a_second_profile_table_is_refused_unless_replace_moves_the_mark(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    _load(service_context, tmp_path)
    people = _file(tmp_path, "people.csv", CUSTOMERS)
    with pytest.raises(Conflict, match="'customers' is already the profile table"):
        profiles.import_profiles(service_context, people, "people", key="CustomerId", profile=True)
    assert "people" not in service_context.profiles.list_tables()
    report = profiles.import_profiles(
        service_context, people, "people", key="CustomerId", profile=True, replace=True
    )
    assert report.previous_profile_table == "customers"
    catalog = profiles.catalog(service_context)
    assert (catalog.profile_table, catalog.profile_key) == ("people", "CustomerId")


def test_reimport_keeps_the_profile_mark_and_key(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    _load(service_context, tmp_path)
    more = _file(tmp_path, "more.csv", CUSTOMERS + "4,Faro,Gold\n")
    report = profiles.import_profiles(service_context, more, "customers", replace=True)
    assert (report.is_profile, report.key, report.rows) == (True, "CustomerId", 4)
    dup = _file(tmp_path, "dup.csv", CUSTOMERS + "1,Faro,Gold\n")
    with pytest.raises(InputError, match="appear more than once"):
        profiles.import_profiles(service_context, dup, "customers", replace=True)
    assert service_context.profiles.row_count("customers") == 4


def test_relate_checks_tables_columns_and_types(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    _load(service_context, tmp_path)
    with pytest.raises(NotFound, match="no table 'ordrs'"):
        profiles.relate(service_context, "ordrs", "CustomerId", "customers", "CustomerId")
    with pytest.raises(InputError, match="column 'CustId' not found in table 'orders'"):
        profiles.relate(service_context, "orders", "CustId", "customers", "CustomerId")
    with pytest.raises(InputError, match=r"CustomerId \(number\) to customers.City \(text\)"):
        profiles.relate(service_context, "orders", "CustomerId", "customers", "City")
    with pytest.raises(InputError, match="to itself"):
        profiles.relate(service_context, "orders", "OrderId", "orders", "OrderId")
    rel, created = profiles.relate(
        service_context, "orders", "CustomerId", "customers", "CustomerId"
    )
    assert created
    assert (
        profiles.relate(service_context, "orders", "CustomerId", "customers", "CustomerId")[1]
        is False
    )
    assert profiles.catalog(service_context).relationship_to_profile("orders") == rel


def test_a_reimport_that_breaks_a_relationship_is_refused(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    _load(service_context, tmp_path)
    profiles.relate(service_context, "orders", "CustomerId", "customers", "CustomerId")
    renamed = _file(tmp_path, "o2.csv", ORDERS.replace("CustomerId", "Customer"))
    with pytest.raises(InputError, match=r"has no column 'CustomerId'.*orders\.CustomerId"):
        profiles.import_profiles(service_context, renamed, "orders", replace=True)
    retyped = _file(tmp_path, "o3.csv", "OrderId,CustomerId\n1,x\n")
    with pytest.raises(InputError, match=r"is text but customers\.CustomerId is number"):
        profiles.import_profiles(service_context, retyped, "orders", replace=True)
    assert service_context.profiles.row_count("orders") == 3


def test_parse_column_ref() -> None:
    assert profiles.parse_column_ref("orders.Customer.Id") == ("orders", "Customer.Id")
    with pytest.raises(InputError, match=r"is not TABLE\.COLUMN"):
        profiles.parse_column_ref("orders")


def test_catalog_without_a_profile_table(service_context: ServiceContext) -> None:
    with pytest.raises(InputError, match="no profile table yet: run `segsync profiles import"):
        profiles.catalog(service_context)


def test_schema_lists_tables_types_counts_and_relationships(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    _load(service_context, tmp_path)
    profiles.relate(service_context, "orders", "CustomerId", "customers", "CustomerId")
    report = profiles.schema(service_context)
    assert report.profile_table == "customers"
    assert [(t.name, t.row_count, t.is_profile) for t in report.tables] == [
        ("customers", 3, True),
        ("orders", 3, False),
    ]
    assert report.tables[1].columns == {
        "OrderId": AttrType.NUMBER,
        "CustomerId": AttrType.NUMBER,
        "Amount": AttrType.NUMBER,
    }
    data = report.to_dict()
    assert data["relationships"] == [
        {"child": "orders.CustomerId", "parent": "customers.CustomerId"}
    ]
    assert data["tables"][0]["attributes"][1] == {"name": "City", "type": "text"}


def test_sample_is_loaded_related_and_ready_for_segments(
    service_context: ServiceContext,
) -> None:
    report = profiles.load_sample(service_context, profiles=500, seed=3)
    assert report.customers == 500
    catalog = profiles.catalog(service_context)
    assert (catalog.profile_table, catalog.profile_key) == ("customers", "CustomerId")
    assert catalog.relationships == [
        Relationship("orders", "CustomerId", "customers", "CustomerId")
    ]
    assert catalog.tables["orders"].columns["OrderDate"] is AttrType.DATE
    assert service_context.profiles.row_count("orders") == report.orders
    again = profiles.load_sample(service_context, profiles=200, seed=3)
    assert service_context.profiles.row_count("customers") == again.customers == 200


def test_sample_refuses_to_take_over_another_profile_table(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    path = _file(tmp_path, "people.csv", CUSTOMERS)
    profiles.import_profiles(service_context, path, "people", key="CustomerId", profile=True)
    with pytest.raises(Conflict, match="'people' is already the profile table"):
        profiles.load_sample(service_context, profiles=10, seed=1)


def test_everything_works_on_postgres_for_both_stores(
    tmp_path: Path,
    postgres_database: Callable[[str], str],
    frozen_now: Callable[[], datetime],
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_database("svc_meta"),
        profiles_url=postgres_database("svc_profiles"),
    )
    with open_context(settings, now=frozen_now) as ctx:
        profiles.load_sample(ctx, profiles=60, seed=5)
        _load_path = _file(tmp_path, "extra.csv", "Id,CustomerId\n1,1\n2,60\n")
        profiles.import_profiles(ctx, _load_path, "visits", key="Id")
        profiles.relate(ctx, "visits", "CustomerId", "customers", "CustomerId")
        catalog = profiles.catalog(ctx)
        assert ctx.profiles.name == "postgres"
        assert ctx.db.dialect == "postgresql"
    assert sorted(catalog.tables) == ["customers", "orders", "visits"]
    assert catalog.profile.row_count is None
    assert len(catalog.relationships) == 2
