"""The ``/v1`` endpoints of the Ortto API that segsync uses, over one :class:`OrttoState`.

Every request body is JSON (Ortto's endpoints are ``POST``/``PUT``/``DELETE`` with a body, even
for reading). Errors are ``{"error": {"code": "<word>", "message": "<text>"}}``, the shape of
Ortto's documented 429 answer (docs/ortto-api.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from segsync.simulator.contacts import ContactError, check_email
from segsync.simulator.endpoints import Reply, Route
from segsync.simulator.faults import Faults
from segsync.simulator.ortto.state import Audience, OrttoState, Person

MAX_PEOPLE = 100
MAX_AUDIENCES_PAGE = 40
MAX_PEOPLE_PAGE = 500
CODES = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    408: "timeout",
    429: "rate-limit",
    500: "internal",
}
FIELD_ID = re.compile(r"^(?P<type>[a-z]{3}):(?P<custom>cm)?:(?P<name>[a-z0-9][a-z0-9-]*)$")
STANDARD = frozenset(
    {
        "str::email",
        "str::first",
        "str::last",
        "str::ei",
        "str::postal",
        "str::language",
        "str::gender",
        "geo::city",
        "geo::region",
        "geo::country",
        "bol::p",
        "bol::sp",
    }
)
AUDIENCE_FILTERS = frozenset(
    {"subscribers", "unsubscribed", "unsubscribed-from-audience", "email-subscribers"}
)


def ortto_error(status: int, message: str) -> Reply:
    return Reply(status, {"error": {"code": CODES.get(status, "error"), "message": message}})


class OrttoEndpoints:
    """Handlers over one :class:`OrttoState`; each returns a :class:`Reply`."""

    def __init__(self, state: OrttoState, faults: Faults) -> None:
        self.state = state
        self.faults = faults

    def resolve(self, method: str, path: str) -> Route | None:
        routes = {
            ("POST", "/person/merge"): self.merge,
            ("POST", "/person/get"): self.get_people,
            ("PUT", "/person/archive"): self.archive,
            ("DELETE", "/person/delete"): self.delete,
            ("POST", "/audiences/get"): self.get_audiences,
            ("POST", "/audiences/create"): self.create_audience,
            ("PUT", "/audience/subscribe"): self.subscribe,
        }
        handler = routes.get((method, "/" + path.strip("/")))
        return None if handler is None else Route("/" + path.strip("/"), handler, {})

    # -- people -----------------------------------------------------------------------------

    def merge(self, params: dict[str, str], body: bytes) -> Reply:
        data = _object(body)
        if isinstance(data, Reply):
            return data
        people = data.get("people")
        if not isinstance(people, list) or not people:
            return ortto_error(400, "people must be a list of 1 to 100 people.")
        if len(people) > MAX_PEOPLE:
            return ortto_error(400, f"At most {MAX_PEOPLE} people per request; got {len(people)}.")
        if data.get("merge_by", ["str::email"]) != ["str::email"]:
            return ortto_error(400, 'The simulator merges only by "str::email".')
        strategy = data.get("merge_strategy", 2)
        if strategy not in (1, 2):
            return ortto_error(400, f"merge_strategy {strategy!r} is not simulated; use 1 or 2.")
        answers = []
        for index, raw in enumerate(people):
            try:
                fields = _person_fields(raw, f"people[{index}]")
            except ContactError as err:
                answers.append({"status": "error", "error": str(err)})
                continue
            email = str(fields["str::email"])
            if self.faults.is_rejected(email):
                answers.append({"status": "error", "error": f"Rejected email address: {email}"})
                continue
            person, created = self.state.merge(fields, overwrite=strategy == 2)
            status = "created" if created else "merged"
            answers.append({"person_id": person.person_id, "status": status})
        return Reply(200, {"people": answers})

    def get_people(self, params: dict[str, str], body: bytes) -> Reply:
        data = _object(body)
        if isinstance(data, Reply):
            return data
        limit = data.get("limit", 50)
        offset = data.get("offset", 0)
        if not _whole(limit) or not _whole(offset):
            return ortto_error(400, "limit and offset must be whole numbers.")
        limit = min(max(int(limit), 1), MAX_PEOPLE_PAGE)
        found = self._people_matching(data)
        if isinstance(found, Reply):
            return found
        page = found[int(offset) : int(offset) + limit]
        wanted = data.get("fields") or ["str::email"]
        contacts = [
            {"id": p.person_id, "fields": {k: p.fields[k] for k in wanted if k in p.fields}}
            for p in page
        ]
        more = int(offset) + len(page) < len(found)
        return Reply(
            200,
            {
                "contacts": contacts,
                "meta": {"total_contacts": len(found)},
                "offset": int(offset),
                "next_offset": int(offset) + len(page),
                "has_more": more,
            },
        )

    def _people_matching(self, data: dict[str, Any]) -> list[Person] | Reply:
        live = [p for p in self.state.people.values() if not p.archived]
        audience_id = data.get("audience_id")
        if audience_id is not None:
            audience = self.state.audiences.get(str(audience_id))
            if audience is None:
                return ortto_error(404, f"Audience {audience_id} not found.")
            which = data.get("audience_filter")
            if which is not None and which not in AUDIENCE_FILTERS:
                return ortto_error(400, f"Unknown audience_filter {which!r}.")
            subscribed = {"subscribers": True, "email-subscribers": True}.get(str(which))
            if which in ("unsubscribed", "unsubscribed-from-audience"):
                subscribed = False
            live = [
                self.state.people[pid]
                for pid, flag in audience.members.items()
                if subscribed is None or flag == subscribed
            ]
        condition = data.get("filter")
        if condition is not None:
            email = _email_filter(condition)
            if email is None:
                return ortto_error(
                    400, 'The simulator filters only {"$str::is": {"field_id": "str::email"}}.'
                )
            live = [p for p in live if p.email.lower() == email.lower()]
        return live

    def _inclusion(self, body: bytes) -> list[Person] | Reply:
        data = _object(body)
        if isinstance(data, Reply):
            return data
        ids = data.get("inclusion_ids")
        if not isinstance(ids, list) or not ids or len(ids) > MAX_PEOPLE:
            return ortto_error(400, "inclusion_ids must be a list of 1 to 100 person ids.")
        return [self.state.people[i] for i in ids if isinstance(i, str) and i in self.state.people]

    def archive(self, params: dict[str, str], body: bytes) -> Reply:
        found = self._inclusion(body)
        if isinstance(found, Reply):
            return found
        for person in found:
            self.state.archive(person)
        return Reply(200, {"archived_contacts": len(found)})

    def delete(self, params: dict[str, str], body: bytes) -> Reply:
        found = self._inclusion(body)
        if isinstance(found, Reply):
            return found
        archived = [person for person in found if person.archived]
        if len(archived) != len(found):
            return ortto_error(400, "People must be archived before they are deleted.")
        for person in archived:
            self.state.delete(person)
        return Reply(200, {"deleted_contacts": len(archived)})

    # -- audiences --------------------------------------------------------------------------

    def get_audiences(self, params: dict[str, str], body: bytes) -> Reply:
        data = _object(body)
        if isinstance(data, Reply):
            return data
        limit = data.get("limit", MAX_AUDIENCES_PAGE)
        offset = data.get("offset", 0)
        if not _whole(limit) or not _whole(offset):
            return ortto_error(400, "limit and offset must be whole numbers.")
        term = str(data.get("search_term") or "").lower()
        found = [a for a in self.state.audiences.values() if term in a.name.lower()]
        limit = min(max(int(limit), 1), MAX_AUDIENCES_PAGE)
        page = found[int(offset) : int(offset) + limit]
        return Reply(200, [self._audience_json(item) for item in page])

    def _audience_json(self, audience: Audience) -> dict[str, Any]:
        return {
            "id": audience.audience_id,
            "instance_id": self.state.instance_id,
            "name": audience.name,
            "type": "permanent",
            "ready": True,
            "members": len(audience.members),
        }

    def create_audience(self, params: dict[str, str], body: bytes) -> Reply:
        data = _object(body)
        if isinstance(data, Reply):
            return data
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            return ortto_error(400, 'The body must be {"name": "<audience name>"}.')
        return Reply(200, self._audience_json(self.state.create_audience(name)))

    def subscribe(self, params: dict[str, str], body: bytes) -> Reply:
        data = _object(body)
        if isinstance(data, Reply):
            return data
        audience = self.state.audiences.get(str(data.get("audience_id")))
        if audience is None:
            return ortto_error(404, f"Audience {data.get('audience_id')} not found.")
        people = data.get("people")
        if not isinstance(people, list) or not people or len(people) > MAX_PEOPLE:
            return ortto_error(400, "people must be a list of 1 to 100 people.")
        answers = []
        for index, raw in enumerate(people):
            if not isinstance(raw, dict) or not isinstance(raw.get("subscribed"), bool):
                return ortto_error(400, f"people[{index}] needs an email and subscribed.")
            email = str(raw.get("email") or "")
            person = self.state.find(email)
            if person is None:
                answers.append({"email": email, "status": "not-found"})
                continue
            before = audience.members.get(person.person_id)
            if raw["subscribed"]:
                audience.members[person.person_id] = True
            elif before is not None:
                audience.members[person.person_id] = False
            changed = audience.members.get(person.person_id) != before
            status = ("subscribed" if raw["subscribed"] else "unsubscribed") if changed else None
            answers.append(
                {"email": email, "person_id": person.person_id, "status": status or "unchanged"}
            )
        return Reply(200, {"people": answers})


def _object(body: bytes) -> dict[str, Any] | Reply:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return ortto_error(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return ortto_error(400, "The request body must be a JSON object.")
    return data


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _email_filter(condition: object) -> str | None:
    if not isinstance(condition, dict) or set(condition) != {"$str::is"}:
        return None
    inner = condition["$str::is"]
    if not isinstance(inner, dict) or inner.get("field_id") != "str::email":
        return None
    value = inner.get("value")
    return value if isinstance(value, str) else None


def _person_fields(raw: object, where: str) -> dict[str, Any]:
    """The checked ``fields`` of one person of a merge (``ContactError`` says what is wrong)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict):
        raise ContactError(f'{where}: a person is {{"fields": {{...}}}}.')
    fields: dict[str, Any] = raw["fields"]
    check_email(fields.get("str::email"), "str::email", where)
    for key, value in fields.items():
        match = FIELD_ID.match(key)
        if match is None or (not match["custom"] and key not in STANDARD):
            raise ContactError(f"{where}: {key!r} is not a field id.")
        if value is not None and not _fits(match["type"], value):
            raise ContactError(f"{where}: the value of {key} does not fit its type.")
    return fields


def _fits(kind: str, value: object) -> bool:
    if kind == "str":
        return isinstance(value, str) and len(value) <= 255
    if kind == "txt":
        return isinstance(value, str) and len(value) <= 4000
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bol":
        return isinstance(value, bool)
    if kind == "dtz":
        return isinstance(value, str) and bool(re.match(r"^\d{4}-\d{2}-\d{2}", value))
    if kind == "geo":
        return isinstance(value, dict) and isinstance(value.get("name"), str)
    return False
