"""Payload hashes computed by DuckDB for a batch of rows (services/sync/batch_hash.py) equal the
ones Python computes contact by contact, for every value the fast path takes; other batches are
left to Python. The clean stage decides the same from such hashes as from whole rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.emails import normalise_email
from segsync.domain.mapping import FieldMapping, build_contact, contact_hash
from segsync.segments import evaluate as evaluate_module
from segsync.segments.rows import RowBatch
from segsync.services.context import ServiceContext
from segsync.services.profiles import load_sample
from segsync.services.sync import read as read_module
from segsync.services.sync.batch_hash import (
    DIGEST_COLUMN,
    EMAIL_AS_IS_COLUMN,
    column_types,
    digest_sql,
    digests_of,
    email_as_is_sql,
)
from segsync.services.sync.clean import Cleaner, MemberScan
from tests.conftest import examples

MAPPING = FieldMapping(
    email="Email",
    first_name="First",
    last_name="Last",
    extra=(
        ("NumberOfEmployees", "Staff"),
        ("custom:integer:Visits", "Visits"),
        ("custom:boolean:VIP", "Vip"),
        ("custom:string:Zürich Ünïcode", "Note"),
        ("custom:string:Also first", "First"),  # one attribute, two fields
    ),
    catalogue=AUTOPILOT_FIELDS,
)
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("Email", pa.string()),
        ("First", pa.string()),
        ("Last", pa.large_string()),
        ("Staff", pa.int32()),
        ("Visits", pa.int64()),
        ("Vip", pa.bool_()),
        ("Note", pa.string()),
    ]
)
# Any text DuckDB holds (valid UTF-8: no lone surrogates), quotes, backslashes, control
# characters, U+2028 and emoji included.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
INT64 = st.integers(-(2**63), 2**63 - 1)
DUCKDB = duckdb.connect()
"""One connection for every example (as long as the tests)."""


def hashed_in_duckdb(
    batch_rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA
) -> RowBatch | None:
    """The rows as DuckDB gives them to the read stage: with the payload hash column when
    :func:`digest_sql` allows it (None otherwise), and whether each email is taken as it is."""
    table = pa.Table.from_pylist(batch_rows, schema=schema)
    expression = digest_sql(MAPPING, column_types(ibis.Schema.from_pyarrow(schema)))
    if expression is None:
        return None
    email = email_as_is_sql("Email")
    DUCKDB.register("batch", table)
    try:
        cursor = DUCKDB.execute(
            f'SELECT *, {expression} AS "{DIGEST_COLUMN}", {email} AS "{EMAIL_AS_IS_COLUMN}" '
            "FROM batch"
        )
        names = tuple(d[0] for d in cursor.description)
        return RowBatch(names, cursor.fetchall())
    finally:
        DUCKDB.unregister("batch")


def sql_digests(batch_rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA) -> list[str] | None:
    batch = hashed_in_duckdb(batch_rows, schema)
    return None if batch is None else digests_of(batch, MAPPING)


def python_hash(row: dict[str, Any]) -> str:
    return contact_hash(MAPPING, build_contact(MAPPING, row))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(st.integers(1, 10**6)),
        "Email": draw(st.none() | TEXT),
        "First": draw(st.none() | TEXT),
        "Last": draw(st.none() | TEXT),
        "Staff": draw(st.none() | st.integers(-(2**31), 2**31 - 1)),
        "Visits": draw(st.none() | INT64),
        "Vip": draw(st.none() | st.booleans()),
        "Note": draw(st.none() | TEXT),
    }


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(rows(), min_size=1, max_size=30))
def test_duckdb_hashes_each_row_as_python_hashes_its_contact(
    batch_rows: list[dict[str, Any]],
) -> None:
    assert sql_digests(batch_rows) == [python_hash(r) for r in batch_rows]


def test_an_empty_row_and_a_full_one_hash_to_the_canonical_form() -> None:
    """Pinned against the canonical JSON text itself, not only against Python's hash."""
    full = {"id": 1, "Email": "a@b.co", "First": "Zoë \"Q\"\n", "Last": None, "Staff": 3,
            "Visits": -9, "Vip": False, "Note": ""}  # fmt: skip
    empty = dict.fromkeys(full) | {"id": 2}
    canonical = [
        '{"custom":{"boolean--VIP":false,"integer--Visits":-9,'
        '"string--Also--first":"Zoë \\"Q\\"\\n","string--Zürich--Ünïcode":""},'
        '"fields":{"FirstName":"Zoë \\"Q\\"\\n","NumberOfEmployees":3}}',
        '{"custom":{},"fields":{}}',
    ]
    digests = sql_digests([full, empty])
    assert digests == [hashlib.sha256(text.encode()).hexdigest() for text in canonical]
    assert digests == [python_hash(full), python_hash(empty)]


def test_columns_that_do_not_go_out_as_they_are_are_left_to_python() -> None:
    """A number for a text field (sent as text), a float for an integer field (checked per
    value), text for a boolean, 64-bit unsigned values: Python converts and hashes them."""
    row = {"id": 1, "Email": "a@b.co", "First": "A", "Last": "B", "Staff": 3, "Visits": 4,
           "Vip": True, "Note": "n"}  # fmt: skip
    assert sql_digests([row]) == [python_hash(row)]
    for name, arrow_type in (
        ("First", pa.int64()),
        ("Staff", pa.float64()),
        ("Vip", pa.string()),
        ("Visits", pa.uint64()),
    ):
        schema = SCHEMA.set(SCHEMA.get_field_index(name), pa.field(name, arrow_type))
        value = {"Vip": "yes", "First": 7}.get(name, row[name])
        assert sql_digests([row | {name: value}], schema) is None, name


def test_a_mapping_with_a_float_or_date_field_is_left_to_python() -> None:
    for spec in ("custom:float:Score", "custom:date:Since"):
        mapping = FieldMapping(email="Email", extra=((spec, "X"),), catalogue=AUTOPILOT_FIELDS)
        for type_name in ("float64", "date", "string", "int64"):
            assert digest_sql(mapping, {"Email": "string", "X": type_name}) is None


# -- the clean stage from hashes ---------------------------------------------------------------

EMAILS = ["a@example.com", " A@Example.com", "b@example.com", "not an email", None, "c@x.io"]


@st.composite
def members(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    """Rows of three segments, each ordered by profile id as the read stage gives them;
    profiles share emails, change names between segments never (a profile is one row)."""
    people = draw(st.dictionaries(st.integers(1, 12), st.sampled_from(EMAILS), min_size=1))
    names = {pid: draw(st.sampled_from(["Ann", "Bo", None])) for pid in people}
    out: list[tuple[str, dict[str, Any]]] = []
    for segment in ("1", "2", "3"):
        chosen = draw(st.sets(st.sampled_from(sorted(people))))
        for pid in sorted(chosen):
            row = dict.fromkeys(SCHEMA.names) | {"id": pid, "Email": people[pid]}
            out.append((segment, row | {"First": names[pid], "Staff": pid}))
    return out


def outcome(scan: MemberScan) -> tuple[Any, ...]:
    entries = {
        email: (e.profile_id, e.payload_hash, e.fields, e.custom, e.segments, e.has_payload)
        for email, e in scan.entries.items()
    }
    counts = (scan.members, scan.invalid, scan.duplicates, scan.forgotten)
    return entries, scan.rejects, scan.missing, counts


@settings(max_examples=examples(300), deadline=None)
@given(members(), st.integers(0, 2**16))
def test_the_clean_stage_decides_the_same_from_hashes_as_from_rows(
    member_rows: list[tuple[str, dict[str, Any]]], salt: int
) -> None:
    """Which payloads the run needs (varied by ``salt``) is asked of both paths alike."""

    def needs(email: str, digest: str, segment: str) -> bool:
        return hash((email, digest, segment, salt)) % 3 == 0

    by_rows = Cleaner(MAPPING, "id", needs)
    for segment, row in member_rows:
        by_rows.row(segment, row)
    by_hashes = Cleaner(MAPPING, "id", needs)
    for segment in ("1", "2", "3"):
        batch_rows = [row for s, row in member_rows if s == segment]
        if not batch_rows:
            continue
        batch = hashed_in_duckdb(batch_rows)
        assert batch is not None
        digests = digests_of(batch, MAPPING)
        ids, emails = (batch.column(name) for name in ("id", "Email"))
        ready = batch.column(EMAIL_AS_IS_COLUMN)
        wanted = by_hashes.hashed(segment, ids, emails, digests, ready)
        for position, email in wanted:
            by_hashes.complete(batch.row(position), email)
    assert outcome(by_hashes.finish()) == outcome(by_rows.finish())


# -- emails checked for the whole batch ---------------------------------------------------------

EMAIL_LIKE = st.from_regex(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~(),;:\"\[\] -]{0,70}@[a-z0-9._\-\[\]]{0,70}", fullmatch=True
) | st.text(max_size=80)


@settings(max_examples=examples(1000), deadline=None)
@given(st.lists(st.none() | EMAIL_LIKE, max_size=20))
def test_an_email_taken_as_it_is_is_what_normalising_would_give(raw: list[str | None]) -> None:
    ready = emails_as_they_are(raw)
    for email, as_is in zip(raw, ready, strict=True):
        if as_is:
            assert normalise_email(email) == (email, None)


def test_common_emails_are_taken_as_they_are_and_the_rest_asks_python() -> None:
    raw = ["jane@example.com", "a.b+c@mail.example.co.uk", "1@2.com", "x" * 64 + "@e.com",
           "Jane@example.com", " jane@example.com", "jane@example.123", "a..b@example.com",
           "x" * 65 + "@e.com", "zoë@example.com", None, ""]  # fmt: skip
    assert emails_as_they_are(raw) == [True] * 4 + [False] * 6 + [None, False]


def test_an_email_column_that_is_not_text_is_left_to_python() -> None:
    """Only a text column's emails are checked by DuckDB; other columns' values are all
    asked of Python (which refuses them with a reason)."""
    backend = ibis.duckdb.connect()
    backend.raw_sql("CREATE TABLE p (id BIGINT, Email BIGINT, First VARCHAR)")
    mapping = FieldMapping(email="Email", first_name="First", catalogue=AUTOPILOT_FIELDS)
    hashing = read_module.Hashing(mapping, backend.table("p"), "id")
    assert [name for name, _ in hashing.sql] == [DIGEST_COLUMN]
    batch = RowBatch(("id", "Email", "First", DIGEST_COLUMN), [(1, 7, "A", None)])
    cleaner = Cleaner(mapping, "id")
    hashing.clean(cleaner, "1", batch)
    assert cleaner.finish().invalid == 1


def emails_as_they_are(raw: list[str | None]) -> list[bool | None]:
    """:func:`email_as_is_sql` on these emails, in DuckDB (in order: unnest keeps it)."""
    query = f'SELECT {email_as_is_sql("Email")} FROM (SELECT unnest(?::VARCHAR[]) AS "Email")'
    return [ok for (ok,) in DUCKDB.execute(query, [raw]).fetchall()]


def everyone_of(
    ctx: ServiceContext, profiles: int
) -> tuple[list[read_module.SegmentSource], FieldMapping]:
    """``profiles`` sample profiles, a segment of them all and a mapping of two columns."""
    load_sample(ctx, profiles=profiles, seed=5)
    everyone = {"attribute": "CustomerId", "op": "greater_or_equal", "value": 0}
    text = json.dumps({"name": "All", "rules": [{"conditions": {"all": [everyone]}}]})
    segments = [read_module.SegmentSource("1", "All", text)]
    return segments, FieldMapping(email="Email", first_name="FirstName", catalogue=AUTOPILOT_FIELDS)


def test_a_read_that_needs_most_payloads_leaves_the_sql_hashes_after_one_batch(
    service_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run needs every payload: after the first batch the read builds rows in Python
    instead of hashing in SQL and then building them all; the contacts are the same."""
    segments, mapping = everyone_of(service_context, 300)
    hashed: list[int] = []

    def spy(batch: RowBatch, of: FieldMapping) -> list[str]:
        hashed.append(batch.num_rows)
        return digests_of(batch, of)

    monkeypatch.setattr(read_module, "digests_of", spy)
    scan = read_module.scan_members(service_context, segments, mapping, batch_size=100)
    assert hashed == [100]  # the first batch only
    assert scan.members == 300
    assert all(entry.has_payload for entry in scan.entries.values())


def test_a_run_reads_its_members_unordered(
    service_context: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's member query streams the rows as the engine finds them (ordered, DuckDB held
    them all before the first came out)."""
    segments, mapping = everyone_of(service_context, 50)
    asked: list[bool] = []
    member_rows = evaluate_module.member_rows

    def spy(*args: Any, ordered: bool = True, **kwargs: Any) -> Iterator[RowBatch]:
        asked.append(ordered)
        return member_rows(*args, ordered=ordered, **kwargs)

    monkeypatch.setattr(evaluate_module, "member_rows", spy)
    assert read_module.scan_members(service_context, segments, mapping).members == 50
    assert asked == [False]
