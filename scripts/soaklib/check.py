"""The end of a soak phase: Autopilot's state (read from the simulator's ``/_sim`` endpoints)
against the expectation computed from the final CSV alone, and the figures printed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from soaklib.cli import RunRow
from soaklib.data import Contact

TIER_FIELD = "Tier"


@dataclass
class Comparison:
    lost: list[tuple[str, str]] = field(default_factory=list)  # (email, list title)
    orphaned: list[tuple[str, str]] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong_fields: list[tuple[str, str]] = field(default_factory=list)  # (email, what differs)
    lists_per_title: dict[str, int] = field(default_factory=dict)

    @property
    def extra_lists(self) -> int:
        return sum(n - 1 for n in self.lists_per_title.values() if n > 1)


def _tier(contact: dict[str, Any]) -> Any:
    for item in contact.get("custom_fields", []):
        if item.get("kind") == TIER_FIELD and not item.get("deleted"):
            return item.get("value")
    return None


def compare(
    expected: dict[str, Contact], contacts: list[dict[str, Any]], lists: list[dict[str, Any]]
) -> Comparison:
    """Lost: expected on a list and is not. Orphaned: on a list and should not be (or not on
    any). Duplicated: an email held by more than one contact. Wrong fields: a contact that
    belongs on a list whose first name, last name or custom field differs."""
    result = Comparison()
    titles = {item["list_id"]: item["title"] for item in lists}
    result.lists_per_title = dict(Counter(item["title"] for item in lists))
    emails = Counter(str(c["Email"]).strip().lower() for c in contacts)
    result.duplicated = sorted(email for email, n in emails.items() if n > 1)
    actual: dict[str, set[str]] = {}
    by_email: dict[str, dict[str, Any]] = {}
    for contact in contacts:
        email = str(contact["Email"]).strip().lower()
        by_email[email] = contact
        actual.setdefault(email, set()).update(titles.get(i, i) for i in contact.get("lists", []))
    for email, want in sorted(expected.items()):
        have = actual.get(email, set())
        result.lost.extend((email, title) for title in sorted(want.lists - have))
        if email not in by_email:
            continue
        held = by_email[email]
        got = (held.get("FirstName"), held.get("LastName"), _tier(held))
        if got != (want.first, want.last, want.tier):
            result.wrong_fields.append((email, f"{got} != {(want.first, want.last, want.tier)}"))
    for email, have in sorted(actual.items()):
        want_lists = expected[email].lists if email in expected else frozenset()
        result.orphaned.extend((email, title) for title in sorted(have - want_lists))
    return result


def stuck(runs: list[RunRow]) -> list[RunRow]:
    """Runs not finished, or still holding a lease, at the end."""
    return [r for r in runs if r.status in ("queued", "processing") or r.lease_owner is not None]


def examples(items: list[Any], n: int = 3) -> str:
    return "" if not items else " e.g. " + "; ".join(str(i) for i in items[:n])
