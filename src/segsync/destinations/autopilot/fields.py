"""Autopilot's field catalogue: the standard contact fields an export may fill, the custom field
types, how a custom field is keyed (``<type>--<Name>``, spaces as ``--``) and the names never
sent (``unsubscribed``, ``Email`` outside the email mapping, ``_``-keys, ``notify``)."""

from __future__ import annotations

from segsync.domain.fields import CustomKeys, FieldCatalogue, ReservedName, StandardField

STANDARD_FIELDS: tuple[StandardField, ...] = (
    StandardField("Salutation", "Salutation"),
    StandardField("Company", "Company"),
    StandardField("NumberOfEmployees", "NumberOfEmployees", "integer"),
    StandardField("Title", "Title"),
    StandardField("Industry", "Industry"),
    StandardField("Phone", "Phone"),
    StandardField("MobilePhone", "MobilePhone"),
    StandardField("Fax", "Fax"),
    StandardField("Website", "Website"),
    StandardField("MailingStreet", "MailingStreet"),
    StandardField("MailingCity", "MailingCity"),
    StandardField("MailingState", "MailingState"),
    StandardField("MailingPostalCode", "MailingPostalCode"),
    StandardField("MailingCountry", "MailingCountry"),
    StandardField("owner_name", "owner_name"),
    StandardField("LeadSource", "LeadSource"),
    StandardField("Status", "Status"),
    StandardField("LinkedIn", "LinkedIn"),
    StandardField("Twitter", "Twitter"),
)
"""The standard contact fields a mapping may target (FirstName/LastName through their own
options). ``Email`` and ``unsubscribed`` are deliberately absent."""
_CONTROL_KEY = (
    "{name} is an Autopilot control key (like _autopilot_list or _NewEmail) and cannot be mapped"
)

AUTOPILOT_FIELDS = FieldCatalogue(
    destination="Autopilot",
    email_key="Email",
    first_name_key="FirstName",
    last_name_key="LastName",
    standard=STANDARD_FIELDS,
    custom_types=("string", "integer", "float", "date", "boolean"),
    custom_keys=CustomKeys(template="{type}--{name}", space="--", max_name=100),
    reserved=(
        ReservedName(
            "unsubscribed",
            "unsubscribed cannot be mapped: segsync never sends it, since it could re-subscribe "
            "a person who unsubscribed in Autopilot (X13)",
        ),
        ReservedName("_", _CONTROL_KEY, prefix=True),
        ReservedName("notify", _CONTROL_KEY),
    ),
)
"""What an Autopilot export may map (see docs/exports.md, "Data matching")."""
