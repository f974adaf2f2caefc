"""The Ortto simulator's account: people (keyed on ``str::email``), audiences and who is
subscribed to which, saved atomically like the Autopilot simulator's state.

An audience's members each carry an email subscription flag: ``PUT /v1/audience/subscribe``
with ``subscribed: true`` makes a person a subscribed member, ``false`` unsubscribes them from
that audience (they stay a member). docs/ortto-api.md says what is documented and what is the
simulator's choice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from segsync.simulator.persist import SeededState

STATE_FORMAT = "segsync-ortto-simulator-state"
STATE_VERSION = 1


@dataclass
class Person:
    person_id: str
    fields: dict[str, Any]
    created_at: float
    updated_at: float
    archived: bool = False

    @property
    def email(self) -> str:
        return str(self.fields.get("str::email") or "")


@dataclass
class Audience:
    audience_id: str
    name: str
    created_at: float
    members: dict[str, bool] = field(default_factory=dict)
    """person id → subscribed (email), in the order people joined."""

    def subscribers(self) -> list[str]:
        return [person_id for person_id, subscribed in self.members.items() if subscribed]


class OrttoState(SeededState):
    """People by id with a case-insensitive email index (archived people are not in it: a merge
    of their email makes a new person, as Ortto documents), and audiences by id.

    Ids are 24 hex digits like Ortto's, from ``uuid5(salt, counter)``: reproducible with a seed;
    the counter survives :meth:`clear`, so no id is handed out twice.
    """

    state_format = STATE_FORMAT
    state_version = STATE_VERSION

    def clear(self) -> None:
        self.people: dict[str, Person] = {}
        self.by_email: dict[str, str] = {}
        self.audiences: dict[str, Audience] = {}

    @property
    def instance_id(self) -> str:
        return "sim-" + uuid.uuid5(self.salt, "instance").hex[:12]

    def new_id(self, kind: str) -> str:
        return self._next_uuid(kind).hex[:24]

    # -- people -----------------------------------------------------------------------------

    def find(self, email: str) -> Person | None:
        person_id = self.by_email.get(email.strip().lower())
        return None if person_id is None else self.people.get(person_id)

    def merge(self, fields: dict[str, Any], *, overwrite: bool) -> tuple[Person, bool]:
        """Create or update the person with ``fields["str::email"]``; ``(person, created)``.
        ``overwrite`` False keeps values already stored (merge strategy 1); ``None`` clears."""
        now = self._wall_clock()
        person = self.find(str(fields["str::email"]))
        if person is None:
            person = Person(self.new_id("person"), {}, now, now)
            self.people[person.person_id] = person
            self.by_email[str(fields["str::email"]).strip().lower()] = person.person_id
            created = True
        else:
            created = False
        for key, value in fields.items():
            if key == "str::email" and not created:
                continue
            if value is None:
                person.fields.pop(key, None)
            elif overwrite or key not in person.fields:
                person.fields[key] = value
        person.updated_at = now
        return person, created

    def archive(self, person: Person) -> None:
        person.archived = True
        self.by_email.pop(person.email.strip().lower(), None)
        for audience in self.audiences.values():
            audience.members.pop(person.person_id, None)

    def delete(self, person: Person) -> None:
        del self.people[person.person_id]

    # -- audiences --------------------------------------------------------------------------

    def create_audience(self, name: str) -> Audience:
        audience = Audience(self.new_id("audience"), name, self._wall_clock())
        self.audiences[audience.audience_id] = audience
        return audience

    def emails(self, person_ids: list[str]) -> list[str]:
        return [self.people[person_id].email for person_id in person_ids]

    # -- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            **self.header(),
            "people": [vars(person) for person in self.people.values()],
            "audiences": [vars(audience) for audience in self.audiences.values()],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        self.read_header(data)
        for raw in data["people"]:
            person = Person(**raw)
            self.people[person.person_id] = person
            if not person.archived:
                self.by_email[person.email.strip().lower()] = person.person_id
        for raw in data["audiences"]:
            audience = Audience(**raw)
            self.audiences[audience.audience_id] = audience
