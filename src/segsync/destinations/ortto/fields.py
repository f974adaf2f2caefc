"""Ortto's field catalogue: the person fields an export may fill (by their field ids, such as
``str::first``), the custom field types and how a custom field is keyed
(``<type>:cm:<name>``, lower case, spaces as ``-``: ``custom:string:Loyalty Tier`` is sent as
``str:cm:loyalty-tier``), and the permission fields segsync never sends."""

from __future__ import annotations

from segsync.domain.fields import CustomKeys, FieldCatalogue, ReservedName, StandardField

STANDARD_FIELDS: tuple[StandardField, ...] = (
    StandardField("geo::city", "City"),
    StandardField("geo::region", "Region"),
    StandardField("geo::country", "Country"),
    StandardField("str::postal", "Postal code"),
    StandardField("str::language", "Language"),
    StandardField("str::gender", "Gender"),
    StandardField("str::ei", "External ID"),
)
"""Person fields a mapping may target besides the email and names (docs/ortto-api.md says
which of them the sources confirm). ``geo::`` fields are sent as ``{"name": value}``."""

_PERMISSION = (
    "{name} is an Ortto permission field and cannot be mapped: segsync never sends it, since it "
    "could re-subscribe a person who unsubscribed in Ortto (X13)"
)

ORTTO_FIELDS = FieldCatalogue(
    destination="Ortto",
    email_key="str::email",
    first_name_key="str::first",
    last_name_key="str::last",
    standard=STANDARD_FIELDS,
    custom_types=("string", "integer", "boolean", "date"),
    custom_keys=CustomKeys(
        template="{type}:cm:{name}",
        space="-",
        max_name=60,
        type_names=(("string", "str"), ("integer", "int"), ("boolean", "bol"), ("date", "dtz")),
        lower=True,
    ),
    reserved=(
        ReservedName("bol::p", _PERMISSION),
        ReservedName("bol::sp", _PERMISSION),
    ),
)
"""What an Ortto export may map (docs/exports.md, "Data matching")."""
