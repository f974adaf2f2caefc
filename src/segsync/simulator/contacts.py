"""The Autopilot contact object: the write shape clients send, the read shape they get back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STANDARD_FIELDS = frozenset(
    {
        "Email",
        "FirstName",
        "LastName",
        "Salutation",
        "Company",
        "NumberOfEmployees",
        "Title",
        "Industry",
        "Phone",
        "MobilePhone",
        "Fax",
        "Website",
        "MailingStreet",
        "MailingCity",
        "MailingState",
        "MailingPostalCode",
        "MailingCountry",
        "owner_name",
        "LeadSource",
        "Status",
        "LinkedIn",
        "Twitter",
        "unsubscribed",
    }
)
# Accepted inside a contact and not stored: they steer the save.
IGNORED_SPECIAL_KEYS = frozenset({"_autopilot_session_id", "notify"})
CUSTOM_TYPES = ("string", "integer", "float", "date", "boolean")


class ContactError(ValueError):
    """A contact in a request is malformed; the message goes into the 400 body."""


@dataclass
class ContactWrite:
    """One parsed contact from ``POST /contact`` or ``POST /contacts``."""

    email: str
    fields: dict[str, Any]
    custom: dict[str, tuple[str, Any]]
    list_id: str | None = None
    new_email: str | None = None


@dataclass
class ContactRecord:
    """A stored contact. ``custom`` maps a field name (with spaces) to its value."""

    contact_id: str
    seq: int
    fields: dict[str, Any]
    custom: dict[str, Any] = field(default_factory=dict)
    lists: list[str] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def email(self) -> str:
        return str(self.fields["Email"])

    def to_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "seq": self.seq,
            "fields": self.fields,
            "custom": self.custom,
            "lists": self.lists,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContactRecord:
        return cls(
            contact_id=data["contact_id"],
            seq=int(data["seq"]),
            fields=dict(data["fields"]),
            custom=dict(data["custom"]),
            lists=list(data["lists"]),
            created_at=float(data["created_at"]),
            updated_at=float(data["updated_at"]),
        )


def check_email(value: object, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContactError(f"{where}: {key} must be a non-empty string.")
    local, at, domain = value.strip().partition("@")
    if not at or not local or not domain or "@" in domain:
        raise ContactError(f"{where}: {key} {value!r} is not a valid email address.")
    return value


def _check_custom_value(kind: str, name: str, value: object) -> None:
    if value is None:
        return
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "date": isinstance(value, str) and _is_iso_date(value),
    }[kind]
    if not ok:
        raise ContactError(f"Custom field {name!r} is {kind}; {value!r} is not a {kind} value.")


def _is_iso_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_custom(raw: object, where: str) -> dict[str, tuple[str, Any]]:
    """Read ``{"<type>--<Name>": value}`` (``--`` inside the name stands for a space)."""
    if not isinstance(raw, dict):
        raise ContactError(f"{where}: custom must be an object of '<type>--<Name>': value.")
    parsed: dict[str, tuple[str, Any]] = {}
    for key, value in raw.items():
        kind, sep, rest = str(key).partition("--")
        if not sep or kind not in CUSTOM_TYPES or not rest:
            raise ContactError(
                f"{where}: custom field key {key!r} must look like '<type>--<Name>' with type "
                f"one of {', '.join(CUSTOM_TYPES)}."
            )
        name = rest.replace("--", " ")
        _check_custom_value(kind, name, value)
        parsed[name] = (kind, value)
    return parsed


def parse_contact(raw: object, where: str = "contact") -> ContactWrite:
    """Validate one contact object of a request; unknown keys are dropped like Autopilot does."""
    if not isinstance(raw, dict):
        raise ContactError(f"{where} must be a JSON object.")
    if "Email" not in raw:
        raise ContactError(f"{where} has no Email field (the key is case-sensitive).")
    email = check_email(raw["Email"], "Email", where)
    new_email = None
    if raw.get("_NewEmail") is not None:
        new_email = check_email(raw["_NewEmail"], "_NewEmail", where)
    list_id = raw.get("_autopilot_list")
    if list_id is not None and not isinstance(list_id, str):
        raise ContactError(f"{where}: _autopilot_list must be a list id string.")
    if "unsubscribed" in raw and not isinstance(raw["unsubscribed"], bool):
        raise ContactError(f"{where}: unsubscribed must be true or false.")
    fields = {key: value for key, value in raw.items() if key in STANDARD_FIELDS}
    custom = parse_custom(raw["custom"], where) if raw.get("custom") is not None else {}
    return ContactWrite(
        email=email, fields=fields, custom=custom, list_id=list_id, new_email=new_email
    )


def iso_timestamp(epoch: float) -> str:
    """ISO-8601 with milliseconds and ``Z``, as Autopilot writes ``created_at``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_contact(record: ContactRecord, custom_types: dict[str, str]) -> dict[str, Any]:
    """The read shape of ``GET /contact/{contact}`` and of the pages of ``GET /contacts``."""
    doc: dict[str, Any] = {"contact_id": record.contact_id, **record.fields}
    doc.setdefault("unsubscribed", False)
    name = " ".join(
        str(record.fields[key]) for key in ("FirstName", "LastName") if record.fields.get(key)
    )
    if name:
        doc["Name"] = name
    doc["created_at"] = iso_timestamp(record.created_at)
    doc["updated_at"] = iso_timestamp(record.updated_at)
    doc["api_originated"] = True
    doc["lists"] = list(record.lists)
    if record.custom:
        doc["custom_fields"] = [
            {
                "kind": name,
                "value": value,
                "fieldType": custom_types.get(name, "string"),
                "deleted": False,
            }
            for name, value in record.custom.items()
        ]
    return doc
