"""Field catalogues: a mapping is read against the catalogue of its destination, whatever it is.
Autopilot's own rules are pinned in test_mapping.py; here a small made-up catalogue shows the
rules come from the catalogue, not from Autopilot."""

from __future__ import annotations

import pytest

from segsync.domain.catalog import AttrType
from segsync.domain.fields import (
    CustomKeys,
    FieldCatalogue,
    ReservedName,
    StandardField,
    Target,
)
from segsync.domain.mapping import FieldMapping, build_contact, validate_mapping
from segsync.errors import InputError

SMALL = FieldCatalogue(
    destination="Mailbox",
    email_key="address",
    standard=(StandardField("town", "Town"), StandardField("age", "Age", "integer")),
    custom_types=("string",),
    custom_keys=CustomKeys(template="cf[{name}]", space=None, max_name=10),
    reserved=(ReservedName("status", "{name} is managed by Mailbox itself"),),
)
PLAIN = FieldCatalogue(destination="Plain", email_key="Email", standard=(StandardField("X", "X"),))


@pytest.mark.parametrize(
    ("text", "target"),
    [
        (" TOWN ", Target("standard", "town")),
        ("age", Target("standard", "age", "integer")),
        ("custom:String:Pet  Name", Target("custom", "Pet Name", "string")),
    ],
)
def test_targets_are_read_against_the_catalogue(text: str, target: Target) -> None:
    assert SMALL.parse_target(text) == target


def test_custom_fields_are_keyed_as_the_catalogue_says() -> None:
    assert SMALL.write_key(SMALL.parse_target("custom:string:Pet Name")) == "cf[Pet Name]"
    assert SMALL.write_key(SMALL.parse_target("town")) == "town"


@pytest.mark.parametrize(
    ("catalogue", "text", "message"),
    [
        (SMALL, "Status", "'Status' is managed by Mailbox itself"),
        (SMALL, "address", "address is the email mapping: give it with --email"),
        (SMALL, "tonw", "unknown Mailbox field 'tonw'; did you mean town?"),
        (SMALL, "custom:integer:N", "unknown type 'integer'; use one of string"),
        (SMALL, "custom:string:Much too long", "longer than 10 characters"),
        (PLAIN, "Y", "Plain takes no custom fields"),
        (PLAIN, "custom:string:Y", "custom field 'custom:string:Y': Plain takes no custom fields"),
    ],
)
def test_refusals_name_the_destination_and_the_field(
    catalogue: FieldCatalogue, text: str, message: str
) -> None:
    with pytest.raises(InputError) as info:
        catalogue.parse_target(text)
    assert message in str(info.value)


def test_a_destination_without_a_first_name_field_refuses_the_option() -> None:
    with pytest.raises(InputError, match="first name: Mailbox has no first name field"):
        FieldMapping(email="Mail", first_name="First", catalogue=SMALL)


def test_payloads_use_the_catalogues_keys_and_value_types() -> None:
    mapping = FieldMapping(
        email="Mail",
        extra=(("age", "Years"), ("custom:string:Pet Name", "Pet")),
        catalogue=SMALL,
    )
    columns = {"Mail": AttrType.TEXT, "Years": AttrType.NUMBER, "Pet": AttrType.TEXT}
    validate_mapping(mapping, columns)
    payload = build_contact(mapping, {"Mail": "a@b.co", "Years": 41.0, "Pet": "Rex"})
    assert payload.fields == {"age": 41}
    assert payload.custom == {"cf[Pet Name]": "Rex"}
    with pytest.raises(InputError, match="age: attribute 'Pet' is text, but age takes integer"):
        validate_mapping(
            FieldMapping(email="Mail", extra=(("age", "Pet"),), catalogue=SMALL), columns
        )
