"""The ``/v1`` endpoints of the Autopilot API: routing and one handler per endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segsync.simulator.contacts import ContactError, ContactWrite, parse_contact, render_contact
from segsync.simulator.faults import Faults
from segsync.simulator.state import ContactList, OrderedIndex, SimulatorState

MAX_BULK = 100
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
CONTACT_NOT_FOUND = "Contact could not be found."
LIST_NOT_FOUND = "List could not be found."


@dataclass
class Reply:
    """A JSON answer; ``payload=None`` means an empty body."""

    status: int
    payload: Any = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": REASONS.get(status, "Error"), "message": message})


Handler = Callable[[dict[str, str], bytes], Reply]


@dataclass
class Route:
    template: str
    handler: Handler
    params: dict[str, str]


class Endpoints:
    """Handlers over one :class:`SimulatorState`; each returns a :class:`Reply`."""

    def __init__(self, state: SimulatorState, faults: Faults) -> None:
        self.state = state
        self.faults = faults

    def resolve(self, method: str, path: str) -> Route | None:
        """Match a path below ``/v1`` (e.g. ``/contact/a@b.org``) to its endpoint."""
        segs = [seg for seg in path.strip("/").split("/")] if path.strip("/") else []
        n = len(segs)
        head = segs[0] if segs else ""
        if head == "contact":
            if n == 1 and method == "POST":
                return Route("/contact", self.upsert_one, {})
            if n >= 3 and segs[-1] == "unsubscribe" and method == "POST":
                ref = "/".join(segs[1:-1])
                return Route("/contact/{contact}/unsubscribe", self.unsubscribe, {"contact": ref})
            if n >= 2 and method in ("GET", "DELETE"):
                handler = self.get_contact if method == "GET" else self.delete_contact
                return Route("/contact/{contact}", handler, {"contact": "/".join(segs[1:])})
        elif head == "contacts":
            if n == 1 and method == "POST":
                return Route("/contacts", self.upsert_bulk, {})
            if n == 1 and method == "GET":
                return Route("/contacts", self.list_contacts, {})
            if n == 2 and method == "GET" and segs[1] == "custom_fields":
                return Route("/contacts/custom_fields", self.custom_fields, {})
            if n == 2 and method == "GET":
                return Route("/contacts/{bookmark}", self.list_contacts, {"bookmark": segs[1]})
        elif head == "lists" and n == 1 and method == "GET":
            return Route("/lists", self.get_lists, {})
        elif head == "list":
            if n == 1 and method == "POST":
                return Route("/list", self.create_list, {})
            if n in (3, 4) and segs[2] == "contacts" and method == "GET":
                params = {"list_id": segs[1]}
                if n == 3:
                    return Route("/list/{list_id}/contacts", self.list_members, params)
                params["bookmark"] = segs[3]
                return Route("/list/{list_id}/contacts/{bookmark}", self.list_members, params)
            if n >= 4 and segs[2] == "contact" and method in ("GET", "POST", "DELETE"):
                handler = {
                    "GET": self.check_member,
                    "POST": self.add_member,
                    "DELETE": self.remove_member,
                }[method]
                params = {"list_id": segs[1], "contact": "/".join(segs[3:])}
                return Route("/list/{list_id}/contact/{contact}", handler, params)
        elif head == "account" and n == 1 and method == "GET":
            return Route("/account", self.account, {})
        return None

    # -- contacts -------------------------------------------------------------------------

    def _rejected(self, writes: list[ContactWrite]) -> Reply | None:
        bad = [
            email
            for write in writes
            for email in (write.email, write.new_email)
            if email is not None and self.faults.is_rejected(email)
        ]
        if not bad:
            return None
        return error(400, "Rejected email address(es): " + ", ".join(bad))

    def _save(self, writes: list[ContactWrite]) -> list[str] | Reply:
        rejected = self._rejected(writes)
        if rejected is not None:
            return rejected
        try:
            self.state.check_writes(writes)
        except ContactError as err:
            return error(400, str(err))
        return [self.state.apply_write(write) for write in writes]

    def upsert_one(self, params: dict[str, str], body: bytes) -> Reply:
        data = _json_object(body)
        if isinstance(data, Reply):
            return data
        if "contact" not in data:
            return error(400, 'The body must be {"contact": {...}}.')
        try:
            write = parse_contact(data["contact"])
        except ContactError as err:
            return error(400, str(err))
        saved = self._save([write])
        if isinstance(saved, Reply):
            return saved
        return Reply(200, {"contact_id": saved[0]})

    def upsert_bulk(self, params: dict[str, str], body: bytes) -> Reply:
        data = _json_object(body)
        if isinstance(data, Reply):
            return data
        contacts = data.get("contacts")
        if not isinstance(contacts, list):
            return error(400, 'The body must be {"contacts": [...]} with a list of contacts.')
        if len(contacts) > MAX_BULK:
            return error(
                400, f"At most {MAX_BULK} contacts per request; this one has {len(contacts)}."
            )
        try:
            writes = [parse_contact(raw, f"contacts[{i}]") for i, raw in enumerate(contacts)]
        except ContactError as err:
            return error(400, str(err))
        saved = self._save(writes)
        if isinstance(saved, Reply):
            return saved
        email_map = {
            write.email: contact_id for write, contact_id in zip(writes, saved, strict=True)
        }
        return Reply(200, {"contact_ids": saved, "email_contact_map": email_map})

    def get_contact(self, params: dict[str, str], body: bytes) -> Reply:
        record = self.state.find(params["contact"])
        if record is None:
            return error(404, CONTACT_NOT_FOUND)
        return Reply(200, render_contact(record, self.state.custom_types))

    def delete_contact(self, params: dict[str, str], body: bytes) -> Reply:
        record = self.state.find(params["contact"])
        if record is None:
            return error(404, CONTACT_NOT_FOUND)
        self.state.delete(record)
        return Reply(200, {})

    def unsubscribe(self, params: dict[str, str], body: bytes) -> Reply:
        record = self.state.find(params["contact"])
        if record is None:
            return error(404, CONTACT_NOT_FOUND)
        self.state.unsubscribe(record)
        return Reply(200, {})

    def _page(self, index: OrderedIndex, bookmark: str | None) -> Reply:
        try:
            page = self.state.page(index, bookmark)
        except LookupError:
            return error(404, f"Bookmark {bookmark} does not name a contact.")
        types = self.state.custom_types
        payload: dict[str, Any] = {
            "contacts": [render_contact(record, types) for record in page.records],
            "total_contacts": page.total,
        }
        if page.bookmark is not None:
            payload["bookmark"] = page.bookmark
        return Reply(200, payload)

    def list_contacts(self, params: dict[str, str], body: bytes) -> Reply:
        return self._page(self.state.everyone, params.get("bookmark"))

    def custom_fields(self, params: dict[str, str], body: bytes) -> Reply:
        fields = [
            {"name": name, "fieldType": kind} for name, kind in self.state.custom_types.items()
        ]
        return Reply(200, fields)

    # -- lists ----------------------------------------------------------------------------

    def get_lists(self, params: dict[str, str], body: bytes) -> Reply:
        lists = [
            {"list_id": item.list_id, "title": item.title} for item in self.state.lists.values()
        ]
        return Reply(200, {"lists": lists})

    def create_list(self, params: dict[str, str], body: bytes) -> Reply:
        data = _json_object(body)
        if isinstance(data, Reply):
            return data
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            return error(400, 'The body must be {"name": "<list title>"} with a non-empty name.')
        return Reply(200, {"list_id": self.state.create_list(name).list_id})

    def _list(self, params: dict[str, str]) -> ContactList | Reply:
        found = self.state.lists.get(params["list_id"])
        return error(404, LIST_NOT_FOUND) if found is None else found

    def list_members(self, params: dict[str, str], body: bytes) -> Reply:
        found = self._list(params)
        if isinstance(found, Reply):
            return found
        return self._page(found.members, params.get("bookmark"))

    def _membership(self, params: dict[str, str], change: str) -> Reply:
        found = self._list(params)
        if isinstance(found, Reply):
            return found
        record = self.state.find(params["contact"])
        if record is None:
            return error(404, CONTACT_NOT_FOUND)
        if change == "check":
            return Reply(200, {}) if record.seq in found.members else Reply(404)
        if change == "add":
            modified = self.state.add_member(found, record)
        else:
            modified = self.state.remove_member(found, record)
        return Reply(200, {} if modified else {"not_modified": True})

    def check_member(self, params: dict[str, str], body: bytes) -> Reply:
        return self._membership(params, "check")

    def add_member(self, params: dict[str, str], body: bytes) -> Reply:
        return self._membership(params, "add")

    def remove_member(self, params: dict[str, str], body: bytes) -> Reply:
        return self._membership(params, "remove")

    def account(self, params: dict[str, str], body: bytes) -> Reply:
        return Reply(
            200,
            {
                "instanceId": self.state.instance_id,
                "name": "Autopilot simulator",
                "simulated": True,
            },
        )


def _json_object(body: bytes) -> dict[str, Any] | Reply:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return error(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return error(400, "The request body must be a JSON object.")
    return data
