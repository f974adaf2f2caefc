"""Data matching (E1, E2): targets, validation against the profile table, payloads and hashes."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.catalog import AttrType
from segsync.domain.fields import Target
from segsync.domain.mapping import (
    FieldMapping,
    build_contact,
    contact_hash,
    mapped_attributes,
    payload_hash,
    validate_mapping,
)
from segsync.domain.payload import convert_value, is_missing
from segsync.errors import InputError, RecordRejected
from tests.conftest import examples

STANDARD_FIELDS = AUTOPILOT_FIELDS.standard_keys()
parse_target = AUTOPILOT_FIELDS.parse_target


def autopilot_mapping(**given: Any) -> FieldMapping:
    """A mapping read against Autopilot's catalogue."""
    return FieldMapping(catalogue=AUTOPILOT_FIELDS, **given)


COLUMNS = {
    "Email": AttrType.TEXT,
    "FirstName": AttrType.TEXT,
    "LastName": AttrType.TEXT,
    "City": AttrType.TEXT,
    "Zip": AttrType.NUMBER,
    "Employees": AttrType.NUMBER,
    "Score": AttrType.NUMBER,
    "BirthDate": AttrType.DATE,
    "IsVip": AttrType.BOOLEAN,
}


def test_standard_fields_exclude_email_unsubscribed_and_control_keys() -> None:
    assert "Email" not in STANDARD_FIELDS
    assert "unsubscribed" not in STANDARD_FIELDS
    assert not [name for name in STANDARD_FIELDS if name.startswith("_")]
    assert {"Company", "NumberOfEmployees", "MailingCity", "owner_name", "Twitter"} <= set(
        STANDARD_FIELDS
    )


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("Company", Target("standard", "Company")),
        ("  mailingcity ", Target("standard", "MailingCity")),
        ("OWNER_NAME", Target("standard", "owner_name")),
        ("custom:string:Favourite Colour", Target("custom", "Favourite Colour", "string")),
        ("CUSTOM:Integer: Review  Rating ", Target("custom", "Review Rating", "integer")),
        ("NumberOfEmployees", Target("standard", "NumberOfEmployees", "integer")),
        ("custom:date:a:b", Target("custom", "a:b", "date")),
    ],
)
def test_parse_target_canonicalises(text: str, target: Target) -> None:
    assert parse_target(text) == target


def test_custom_write_keys_replace_spaces_with_double_dashes() -> None:
    write_key = AUTOPILOT_FIELDS.write_key
    assert write_key(parse_target("custom:integer:Review Rating")) == "integer--Review--Rating"
    assert write_key(parse_target("custom:boolean:VIP")) == "boolean--VIP"
    assert write_key(parse_target("Company")) == "Company"
    assert parse_target("custom:float:Lifetime Value").spec == "custom:float:Lifetime Value"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unsubscribed", "unsubscribed cannot be mapped"),
        ("Unsubscribed", "(X13)"),
        ("Email", "Email is the email mapping: give it with --email"),
        ("_autopilot_list", "'_autopilot_list' is an Autopilot control key"),
        ("_NewEmail", "control key"),
        ("notify", "control key"),
        ("FirstName", "FirstName has its own option: give it with --first-name"),
        ("lastname", "LastName has its own option: give it with --last-name"),
        ("Compnay", "unknown Autopilot field 'Compnay'; did you mean Company?"),
        ("Shoe", "custom fields are written custom:<type>:<Name>"),
        ("custom:text:Name", "unknown type 'text'; use one of string, integer, float, date"),
        ("custom:string", "must be written custom:<type>:<Name>"),
        ("custom:string:  ", "has no name after the type"),
        ("custom:string:A--B", "contains '--'"),
        ("custom:string:" + "n" * 101, "longer than 100 characters"),
    ],
)
def test_bad_targets_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_target(text)
    assert message in str(info.value)


def test_mapping_requires_email_and_refuses_duplicate_targets() -> None:
    with pytest.raises(InputError, match="the email mapping is required"):
        autopilot_mapping(email=" ")
    with pytest.raises(InputError, match="Company is mapped twice"):
        autopilot_mapping(email="Email", extra=(("Company", "A"), ("company", "B")))
    with pytest.raises(InputError, match="mapped twice"):
        autopilot_mapping(
            email="Email", extra=(("custom:string:Score", "A"), ("custom:float:score", "B"))
        )


def test_mapping_round_trips_through_a_dict() -> None:
    mapping = autopilot_mapping(
        email="Email",
        first_name="FirstName",
        extra=(("mailingcity", "City"), ("custom:integer:Review  Rating", "Score")),
    )
    assert mapping.extra == (("MailingCity", "City"), ("custom:integer:Review Rating", "Score"))
    data = json.loads(json.dumps(mapping.to_dict()))
    assert FieldMapping.from_dict(data, AUTOPILOT_FIELDS) == mapping
    assert data == {
        "email": "Email",
        "first_name": "FirstName",
        "last_name": None,
        "extra": [["MailingCity", "City"], ["custom:integer:Review Rating", "Score"]],
    }
    with pytest.raises(InputError, match="malformed field mapping"):
        FieldMapping.from_dict({"first_name": "x"}, AUTOPILOT_FIELDS)


def test_mapped_attributes_lists_each_attribute_once_email_first() -> None:
    mapping = autopilot_mapping(
        email="Email",
        first_name="FirstName",
        last_name="LastName",
        extra=(("Company", "City"), ("MailingCity", "City"), ("custom:float:S", "Score")),
    )
    assert mapped_attributes(mapping) == ["Email", "FirstName", "LastName", "City", "Score"]


def test_valid_mapping_passes() -> None:
    mapping = autopilot_mapping(
        email="Email",
        first_name="FirstName",
        last_name="LastName",
        extra=(
            ("MailingCity", "City"),
            ("MailingPostalCode", "Zip"),
            ("NumberOfEmployees", "Employees"),
            ("custom:integer:Score", "Score"),
            ("custom:float:Score Float", "Score"),
            ("custom:string:Score Text", "Score"),
            ("custom:date:Birthday", "BirthDate"),
            ("custom:boolean:VIP", "IsVip"),
        ),
    )
    validate_mapping(mapping, COLUMNS)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (autopilot_mapping(email="Mail"), "email: attribute 'Mail' is not on the profile table"),
        (autopilot_mapping(email="email"), "did you mean 'Email'?"),
        (
            autopilot_mapping(email="Zip"),
            "email: attribute 'Zip' is number, but emails must be text",
        ),
        (
            autopilot_mapping(email="Email", first_name="Frist"),
            "first name: attribute 'Frist' is not on the profile table",
        ),
        (
            autopilot_mapping(email="Email", extra=(("Company", "Employer"),)),
            "Company: attribute 'Employer' is not on the profile table",
        ),
        (
            autopilot_mapping(email="Email", extra=(("MailingCity", "Cty"),)),
            "did you mean 'City'?",
        ),
        (
            autopilot_mapping(email="Email", extra=(("NumberOfEmployees", "City"),)),
            "NumberOfEmployees: attribute 'City' is text, but NumberOfEmployees takes integer",
        ),
        (
            autopilot_mapping(email="Email", extra=(("Company", "BirthDate"),)),
            "map it to a custom:date:<Name> field",
        ),
        (
            autopilot_mapping(email="Email", last_name="IsVip"),
            "last name: attribute 'IsVip' is boolean",
        ),
        (
            autopilot_mapping(email="Email", extra=(("custom:date:D", "Score"),)),
            "custom:date:D: attribute 'Score' is number, but custom:date:D takes date",
        ),
        (
            autopilot_mapping(email="Email", extra=(("custom:boolean:B", "City"),)),
            "takes boolean values",
        ),
        (
            autopilot_mapping(email="Email", extra=(("custom:float:F", "IsVip"),)),
            "custom:float:F: attribute 'IsVip' is boolean",
        ),
    ],
)
def test_invalid_mappings_name_the_field_and_the_problem(
    mapping: FieldMapping, message: str
) -> None:
    with pytest.raises(InputError) as info:
        validate_mapping(mapping, COLUMNS)
    assert message in str(info.value)


FULL = autopilot_mapping(
    email="Email",
    first_name="FirstName",
    last_name="LastName",
    extra=(
        ("MailingPostalCode", "Zip"),
        ("NumberOfEmployees", "Employees"),
        ("custom:float:Lifetime Value", "Score"),
        ("custom:date:Birth Date", "BirthDate"),
        ("custom:boolean:VIP", "IsVip"),
    ),
)


def test_build_contact_converts_values_to_their_targets() -> None:
    row = {
        "Email": " Jane@Example.com ",
        "FirstName": "Jane",
        "LastName": "",
        "Zip": 1100.0,
        "Employees": decimal.Decimal("250"),
        "Score": 3,
        "BirthDate": dt.date(1980, 5, 17),
        "IsVip": False,
    }
    payload = build_contact(FULL, row)
    assert payload.email_raw == " Jane@Example.com "
    assert payload.fields == {
        "FirstName": "Jane",
        "LastName": "",
        "MailingPostalCode": "1100",
        "NumberOfEmployees": 250,
    }
    assert payload.custom == {
        "float--Lifetime--Value": 3.0,
        "date--Birth--Date": "1980-05-17",
        "boolean--VIP": False,
    }
    json.dumps([payload.fields, payload.custom], allow_nan=False)


def test_empty_values_are_omitted() -> None:
    payload = build_contact(
        FULL,
        {"Email": "a@b.co", "FirstName": None, "Zip": float("nan"), "BirthDate": None},
    )
    assert payload.fields == {}
    assert payload.custom == {}


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (dt.datetime(2024, 3, 1, 12, 30), "2024-03-01T12:30:00Z"),
        (
            dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-03-01T10:30:00Z",
        ),
        (dt.datetime(2024, 3, 1, 0, 0, 0, 500, tzinfo=dt.UTC), "2024-03-01T00:00:00.000500Z"),
        (dt.date(2024, 3, 1), "2024-03-01"),
        ("2024-03-01", "2024-03-01"),
        ("2024-03-01T08:00:00+01:00", "2024-03-01T07:00:00Z"),
    ],
)
def test_dates_are_sent_as_iso_8601(value: object, sent: str) -> None:
    mapping = autopilot_mapping(email="Email", extra=(("custom:date:When", "When"),))
    assert build_contact(mapping, {"Email": "a@b.co", "When": value}).custom == {"date--When": sent}


@pytest.mark.parametrize(
    ("target", "value", "sent"),
    [
        ("Phone", 351912345678, "351912345678"),
        ("Phone", 12.5, "12.5"),
        ("custom:string:S", decimal.Decimal("1.50"), "1.50"),
        ("custom:integer:I", 7.0, 7),
        ("custom:integer:I", -3, -3),
        ("custom:float:F", decimal.Decimal("0.25"), 0.25),
        ("custom:boolean:B", True, True),
    ],
)
def test_value_conversions(target: str, value: object, sent: object) -> None:
    mapping = autopilot_mapping(email="Email", extra=((target, "X"),))
    payload = build_contact(mapping, {"Email": "a@b.co", "X": value})
    assert [*payload.fields.values(), *payload.custom.values()] == [sent]
    assert type([*payload.fields.values(), *payload.custom.values()][0]) is type(sent)


@pytest.mark.parametrize(
    ("target", "value", "message"),
    [
        ("NumberOfEmployees", 12.5, "NumberOfEmployees: needs a whole number, got 12.5"),
        ("custom:integer:I", True, "custom:integer:I: needs a whole number"),
        ("custom:integer:I", float("inf"), "needs a whole number"),
        ("custom:float:F", float("inf"), "custom:float:F: needs a finite number"),
        ("custom:float:F", "3", "needs a finite number"),
        ("custom:date:D", "yesterday", "custom:date:D: needs a date, got 'yesterday'"),
        ("custom:date:D", 20240301, "needs a date"),
        ("custom:boolean:B", 1, "custom:boolean:B: needs true or false, got 1"),
        ("Company", True, "Company: cannot send True as text"),
    ],
)
def test_unsendable_values_reject_only_that_contact(
    target: str, value: object, message: str
) -> None:
    mapping = autopilot_mapping(email="Email", extra=((target, "X"),))
    with pytest.raises(RecordRejected) as info:
        build_contact(mapping, {"Email": "Jane@Example.com", "X": value})
    assert message in str(info.value)
    assert str(info.value).startswith(f"{target}: ")
    assert info.value.key == "Jane@Example.com"


def test_payload_hash_is_canonical() -> None:
    one = payload_hash({"FirstName": "Jane", "Company": "X"}, {"integer--A": 1})
    assert one == payload_hash({"Company": "X", "FirstName": "Jane"}, {"integer--A": 1})
    assert len(one) == 64
    assert one != payload_hash({"FirstName": "Jane", "Company": "Y"}, {"integer--A": 1})
    assert one != payload_hash({"FirstName": "Jane", "Company": "X"}, {"integer--A": 2})
    # a key moving between standard and custom fields is a change
    assert payload_hash({"A": 1}, {}) != payload_hash({}, {"A": 1})


def test_payload_hash_is_stable_across_processes() -> None:
    fields = {"FirstName": "José", "MailingPostalCode": "1100"}
    custom = {"float--LTV": 12.75, "date--D": "2024-03-01"}
    code = (
        "from segsync.domain.mapping import payload_hash;"
        f"print(payload_hash({fields!r}, {custom!r}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == payload_hash(fields, custom)
    # pinned: changing the canonical form would make every export resend everyone
    canonical = '{"custom":{"integer--A":1},"fields":{"FirstName":"José"}}'
    assert payload_hash({"FirstName": "José"}, {"integer--A": 1}) == (
        hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    )


class Text(str):
    """Text of a subclass of str (a library may hand one over)."""


any_value = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.text(max_size=5).map(Text),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(),  # NaN and infinities too
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
    st.dates(),
    st.datetimes(),
    st.sampled_from(["2024-03-01", "2024-03-01T10:00:00", "soon"]),
)


def by_the_rules(mapping: FieldMapping, row: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The contact as the conversion rules make it, value by value (no fast path)."""
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for _, attribute, target in mapping.targets():
        value = row.get(attribute)
        if is_missing(value):
            continue
        name = target.name if target.kind == "standard" else AUTOPILOT_FIELDS.write_key(target)
        converted = convert_value(value, target, row.get(mapping.email))
        (fields if target.kind == "standard" else custom)[name] = converted
    return fields, custom


@given(values=st.lists(any_value, min_size=8, max_size=8))
@settings(max_examples=examples(400), deadline=None)
def test_values_that_go_out_unchanged_skip_nothing_the_rules_would_do(values: list[Any]) -> None:
    row = dict(zip([name for name in COLUMNS if name != "Email"], values, strict=True))
    row["Email"] = "jane@example.com"
    try:
        expected = by_the_rules(FULL, row)
    except RecordRejected as err:
        with pytest.raises(RecordRejected, match=f"^{re.escape(str(err))}$"):
            build_contact(FULL, row)
        return
    payload = build_contact(FULL, row)
    assert (payload.fields, payload.custom) == expected
    assert [type(v) for v in payload.fields.values()] == [type(v) for v in expected[0].values()]


@given(values=st.lists(any_value, min_size=6, max_size=6))
@settings(max_examples=examples(400), deadline=None)
def test_a_mapping_without_floats_hashes_as_the_checked_path(values: list[Any]) -> None:
    no_float = tuple((t, a) for t, a in FULL.extra if not t.startswith("custom:float:"))
    mapping = autopilot_mapping(
        email="Email", first_name="FirstName", last_name="LastName", extra=no_float
    )
    assert mapping.plain
    assert not FULL.plain
    names = ["FirstName", "LastName", "Zip", "Employees", "BirthDate", "IsVip"]
    row = dict(zip(names, values, strict=True))
    try:
        contact = build_contact(mapping, row)
    except RecordRejected:
        return
    assert contact_hash(mapping, contact) == payload_hash(contact.fields, contact.custom)
