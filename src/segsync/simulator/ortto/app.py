"""The Ortto simulator: the shared machinery of :class:`~segsync.simulator.app.Simulator` (fault
switches, rate limit, stats, ``/_sim``, state file) over Ortto's endpoints, key header and
error shape (docs/ortto-api.md, docs/simulator.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from segsync.simulator.app import Simulator
from segsync.simulator.endpoints import Reply
from segsync.simulator.ortto.endpoints import OrttoEndpoints, ortto_error
from segsync.simulator.ortto.state import OrttoState


class OrttoSimulator(Simulator):
    """A stand-in for Ortto's API (``X-Api-Key``), with the Autopilot simulator's switches."""

    api_name = "Ortto"
    key_header = b"x-api-key"
    state: OrttoState

    def _new_state(self, salt: uuid.UUID) -> OrttoState:
        return OrttoState(salt, self.config.wall_clock)

    def _new_endpoints(self) -> OrttoEndpoints:
        return OrttoEndpoints(self.state, self.faults)

    def _error(self, status: int, message: str) -> Reply:
        return ortto_error(status, message)

    def _key_problem(self, key: str) -> Reply | None:
        if not key:
            return ortto_error(401, "Missing X-Api-Key header.")
        if key not in self.api_keys or key in self.faults.revoked_keys:
            return ortto_error(401, "Invalid API key.")
        return None

    def _throttled(self, simulated: bool) -> Reply:
        reply = ortto_error(429, "rate limit (simulated fault)" if simulated else "rate limit")
        if self.faults.retry_after is not None:
            reply.payload["error"]["try-in-seconds"] = self.faults.retry_after
        return reply

    def contacts_snapshot(self) -> list[dict[str, Any]]:
        """Every person not archived: id, fields and the audiences they are subscribed to."""
        audiences = self.state.audiences.values()
        return [
            {
                "id": person.person_id,
                "fields": dict(person.fields),
                "audiences": [a.audience_id for a in audiences if a.members.get(person.person_id)],
            }
            for person in self.state.people.values()
            if not person.archived
        ]

    def lists_view(self) -> dict[str, Any]:
        lists = [
            {"list_id": a.audience_id, "title": a.name, "members": len(a.subscribers())}
            for a in self.state.audiences.values()
        ]
        return {"lists": lists}

    def lists_with_members(self) -> dict[str, list[str]]:
        """``{"<audience name>": [subscribed emails, sorted]}`` (a name used twice is keyed
        ``"<name> [<id>]"``)."""
        names = [a.name for a in self.state.audiences.values()]
        answer: dict[str, list[str]] = {}
        for audience in self.state.audiences.values():
            key = audience.name
            if names.count(audience.name) > 1:
                key = f"{audience.name} [{audience.audience_id}]"
            answer[key] = sorted(self.state.emails(audience.subscribers()))
        return answer

    def _by_hand(self, method: str, path: str, body: bytes) -> Reply | None:
        """Delete (``DELETE /_sim/lists/{id}``) or rename (``POST /_sim/lists/{id}``) an
        audience, or unsubscribe a person from everything
        (``POST /_sim/contacts/{email}/unsubscribe``), as done in Ortto's app."""
        head, _, rest = path.partition("/")
        if head == "lists" and rest and "/" not in rest:
            audience = self.state.audiences.get(rest)
            if audience is None:
                return ortto_error(404, f"Audience {rest} not found.")
            if method == "DELETE":
                del self.state.audiences[rest]
                return Reply(200, {"deleted": rest, "title": audience.name})
            if method == "POST":
                title = _title(body)
                if title is None:
                    return ortto_error(400, 'The body must be {"title": "<new name>"}.')
                audience.name = title
                return Reply(200, {"list_id": rest, "title": title})
        if head == "contacts" and rest.endswith("/unsubscribe") and method == "POST":
            person = self.state.find(rest[: -len("/unsubscribe")])
            if person is None:
                return ortto_error(404, "Person not found.")
            person.fields["bol::p"] = False
            for audience in self.state.audiences.values():
                if person.person_id in audience.members:
                    audience.members[person.person_id] = False
            return Reply(200, {"contact_id": person.person_id, "unsubscribed": True})
        return None


def _title(body: bytes) -> str | None:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return None
    title = data.get("title") if isinstance(data, dict) else None
    return title if isinstance(title, str) and title.strip() else None
