"""The clean stage (X2): member rows become one contact per distinct valid email; invalid
emails, duplicates, forgotten people and values that do not fit are set aside with reasons."""

from __future__ import annotations

from typing import Any

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.emails import email_digest
from segsync.domain.mapping import FieldMapping
from segsync.services.sync.clean import FORGOTTEN_REASON, Cleaner

MAPPING = FieldMapping(
    email="Email",
    first_name="First",
    extra=(("NumberOfEmployees", "Staff"),),
    catalogue=AUTOPILOT_FIELDS,
)


def row(pid: int, email: str | None, first: str = "Ann", staff: Any = None) -> dict[str, Any]:
    return {"id": pid, "Email": email, "First": first, "Staff": staff}


def test_emails_are_normalised_and_a_person_in_two_segments_is_one_contact() -> None:
    cleaner = Cleaner(MAPPING, "id")
    cleaner.row("1", row(1, "  Ann@Example.COM "))
    cleaner.row("2", row(1, "  Ann@Example.COM "))
    scan = cleaner.finish()
    (contact,) = scan.desired()
    assert contact.email == "ann@example.com"
    assert contact.segments == {"1", "2"}
    assert contact.fields == {"FirstName": "Ann"}
    assert (scan.members, scan.contacts, scan.invalid, scan.duplicates) == (1, 1, 0, 0)


def test_invalid_and_empty_emails_are_set_aside_with_the_reason() -> None:
    cleaner = Cleaner(MAPPING, "id")
    cleaner.row("1", row(1, "not an email"))
    cleaner.row("1", row(2, None))
    cleaner.row("1", row(3, "ok@example.com"))
    scan = cleaner.finish()
    assert (scan.members, scan.invalid, scan.contacts) == (3, 2, 1)
    kinds = [(r.kind, r.profile_id, r.email) for r in scan.rejects]
    assert kinds == [("invalid", "1", "not an email"), ("invalid", "2", None)]
    assert all(r.reason for r in scan.rejects)


def test_the_lowest_profile_id_keeps_a_shared_email_whatever_the_order() -> None:
    cleaner = Cleaner(MAPPING, "id")
    cleaner.row("1", row(9, "same@example.com", first="Nine"))
    cleaner.row("2", row(4, "same@example.com", first="Four"))
    scan = cleaner.finish()
    (contact,) = scan.desired()
    assert contact.fields == {"FirstName": "Four"}
    assert contact.segments == {"2"}  # the loser's segment does not count for the email
    (reject,) = scan.rejects
    assert (reject.kind, reject.profile_id) == ("duplicate", "9")
    assert "profile 4" in reject.reason
    assert scan.duplicates == 1


def test_forgotten_people_are_set_aside_without_their_email() -> None:
    cleaner = Cleaner(MAPPING, "id", suppressed=frozenset({email_digest("gone@example.com")}))
    cleaner.row("1", row(1, "Gone@example.com"))
    scan = cleaner.finish()
    assert scan.contacts == 0
    assert scan.forgotten == 1
    (reject,) = scan.rejects
    assert (reject.kind, reject.email, reject.reason) == ("forgotten", None, FORGOTTEN_REASON)


def test_a_value_that_does_not_fit_its_field_sets_that_person_aside_only() -> None:
    cleaner = Cleaner(MAPPING, "id")
    cleaner.row("1", row(1, "half@example.com", staff=12.5))
    cleaner.row("1", row(2, "whole@example.com", staff=12.0))
    scan = cleaner.finish()
    assert [c.email for c in scan.desired()] == ["whole@example.com"]
    assert next(scan.desired()).fields["NumberOfEmployees"] == 12
    (reject,) = scan.rejects
    assert (reject.kind, reject.email) == ("rejected", "half@example.com")
    assert "NumberOfEmployees" in reject.reason
    assert scan.conversion_rejected == 1


def test_payloads_are_kept_only_where_the_run_may_send_them() -> None:
    asked: list[tuple[str, str]] = []

    def needs_payload(email: str, digest: str, segment: str) -> bool:
        asked.append((email, segment))
        return segment == "2"

    cleaner = Cleaner(MAPPING, "id", needs_payload)
    cleaner.row("1", row(1, "a@example.com"))
    cleaner.row("1", row(2, "b@example.com"))
    cleaner.row("2", row(2, "b@example.com"))
    by_email = {c.email: c for c in cleaner.finish().desired()}
    assert by_email["a@example.com"].fields == {}  # unchanged: no payload held
    assert by_email["b@example.com"].fields == {"FirstName": "Ann"}  # new on list 2
    assert by_email["a@example.com"].payload_hash == by_email["b@example.com"].payload_hash
    assert asked == [("a@example.com", "1"), ("b@example.com", "1"), ("b@example.com", "2")]
