"""The soak's profile data: generation, the changes made between runs, the CSV the profile
table is imported from, the segment definitions, and the expectation.

The expectation is computed from the rows alone, in plain Python, with the segments' rules
re-implemented here (never with segsync's engine): a contact's lists are the union of the
segments of every profile with that email (trimmed, lower-cased), its fields are those of the
member with the lowest profile id.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("id", "Email", "FirstName", "LastName", "City", "Tier", "Score")
CITIES = ("Lisbon", "Porto", "Braga", "Faro", "LISBON", "lisbon")
TIERS = ("gold", "silver", "bronze", "platinum", "Gold")
FIRST = ("Ana", "Rui", "Ines", "Joao", "Marta", "Pedro", "Sofia", "Tiago", "Rita", "Nuno")
LAST = ("Silva", "Santos", "Costa", "Pereira", "Oliveira", "Martins", "Sousa", "Lopes")
CHANGES = (
    "join", "leave", "join", "leave", "rename", "tier", "email", "share", "share", "blank",
    "add", "delete",
)  # fmt: skip
EXPORT = "Soak"
LIST_PREFIX = "Soak · "


@dataclass(frozen=True)
class Segment:
    """One segment: its definition for segsync and the same rule as a Python predicate."""

    name: str
    attribute: str
    op: str  # "in" (text, ignoring case) or "greater_or_equal" (number)
    value: tuple[str, ...] | int

    def definition(self) -> str:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        condition = {"attribute": self.attribute, "op": self.op, "value": value}
        return json.dumps({"name": self.name, "rules": [{"conditions": {"all": [condition]}}]})

    def holds(self, person: Person) -> bool:
        if self.op == "in":
            assert isinstance(self.value, tuple)
            text = getattr(person, self.attribute.lower())
            return text.lower() in {v.lower() for v in self.value}
        assert isinstance(self.value, int), self.op
        return person.score is not None and person.score >= self.value


SEGMENTS = (
    Segment("Lisbon", "City", "in", ("lisbon",)),
    Segment("Gold", "Tier", "in", ("gold", "platinum")),
    Segment("Engaged", "Score", "greater_or_equal", 60),
)


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    first: str
    last: str
    city: str
    tier: str
    score: int | None


@dataclass(frozen=True)
class Contact:
    """What Autopilot should hold for one email: its lists (titles) and fields."""

    lists: frozenset[str]
    first: str
    last: str
    tier: str


def list_title(segment: str) -> str:
    return LIST_PREFIX + segment


class People:
    """The profile rows and the random changes made to them between runs."""

    def __init__(self, rng: random.Random, count: int) -> None:
        self.rng = rng
        self.rows: dict[int, Person] = {}
        self.next_id = 1
        self.next_email = 1
        self.changes: Counter[str] = Counter()
        for _ in range(count):
            self._add()

    def _email(self) -> str:
        n = self.next_email
        self.next_email += 1
        email = f"p{n}@soak.example"
        if self.rng.random() < 0.1:  # dirty but valid: segsync trims and lower-cases
            email = f" P{n}@Soak.Example "
        return email

    def _add(self) -> None:
        rng = self.rng
        person = Person(
            id=self.next_id,
            email=self._email(),
            first=rng.choice(FIRST),
            last=rng.choice(LAST),
            city=rng.choice(CITIES),
            tier=rng.choice(TIERS),
            score=None if rng.random() < 0.05 else rng.randrange(0, 100),
        )
        self.rows[person.id] = person
        self.next_id += 1

    def _pick(self) -> Person:
        return self.rows[self.rng.choice(sorted(self.rows))]

    def _set(self, person: Person, **changes: object) -> None:
        self.rows[person.id] = dataclasses.replace(person, **changes)  # type: ignore[arg-type]

    def mutate(self, n: int) -> None:
        """``n`` random changes: joins and leaves (city, tier, score), renames, new emails,
        shared emails (two profiles, one email, maybe different segments), blank emails,
        new and deleted profiles."""
        rng = self.rng
        for _ in range(n):
            kind = rng.choice(CHANGES)
            self.changes[kind] += 1
            person = self._pick()
            if kind in ("join", "leave"):
                attribute = rng.choice(("city", "tier", "score"))
                join = kind == "join"
                if attribute == "city":
                    value: object = rng.choice(("Lisbon", "LISBON") if join else ("Porto", "Faro"))
                elif attribute == "tier":
                    value = rng.choice(("gold", "platinum") if join else ("silver", "bronze"))
                else:
                    value = rng.randrange(60, 100) if join else rng.choice((None, 10, 59))
                self._set(person, **{attribute: value})
            elif kind == "rename":
                self._set(person, first=rng.choice(FIRST) + str(rng.randrange(100)))
                if rng.random() < 0.5:
                    self._set(self.rows[person.id], last=rng.choice(LAST))
            elif kind == "tier":
                self._set(person, tier=rng.choice(TIERS))
            elif kind == "email":
                self._set(person, email=self._email())
            elif kind == "share":
                other = self._pick()
                if other.id != person.id and other.email.strip():
                    shared = other.email.strip()
                    self._set(person, email=shared.upper() if rng.random() < 0.3 else shared)
            elif kind == "blank":
                self._set(person, email="")
            elif kind == "add":
                self._add()
            elif len(self.rows) > 10:
                del self.rows[person.id]

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for p in sorted(self.rows.values(), key=lambda p: p.id):
                score = "" if p.score is None else p.score
                writer.writerow([p.id, p.email, p.first, p.last, p.city, p.tier, score])


def read_csv(path: Path) -> list[Person]:
    """The rows of a CSV written by :meth:`People.write_csv` (what the expectation reads)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Person(
                id=int(row["id"]),
                email=row["Email"],
                first=row["FirstName"],
                last=row["LastName"],
                city=row["City"],
                tier=row["Tier"],
                score=int(row["Score"]) if row["Score"] else None,
            )
            for row in csv.DictReader(handle)
        ]


def expectation(rows: list[Person]) -> dict[str, Contact]:
    """email → what Autopilot should hold, for every email that belongs on at least one list.

    A profile counts when it is in at least one segment and has a non-empty email. The
    contact's lists are the union over all its profiles; its fields come from the one with
    the lowest profile id among them (the others are set aside as duplicates, their segments
    still count)."""
    lists: dict[str, set[str]] = {}
    lowest: dict[str, Person] = {}
    for person in sorted(rows, key=lambda p: p.id):
        email = person.email.strip().lower()
        if not email:
            continue
        titles = {list_title(s.name) for s in SEGMENTS if s.holds(person)}
        if not titles:
            continue
        lists.setdefault(email, set()).update(titles)
        lowest.setdefault(email, person)
    return {
        email: Contact(
            frozenset(titles), lowest[email].first, lowest[email].last, lowest[email].tier
        )
        for email, titles in lists.items()
    }
