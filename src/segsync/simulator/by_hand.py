"""What a person does by hand in Autopilot's web app, as ``/_sim`` operations for tests and soaks.

Each one changes the account the way the live service would after a click, without going
through ``/v1``: no API key, no faults, not counted in the stats. Drift a run must notice
(a list deleted or renamed, a contact unsubscribed) can be planted this way.
"""

from __future__ import annotations

import json
from typing import Any

from segsync.simulator.endpoints import CONTACT_NOT_FOUND, LIST_NOT_FOUND, Reply, error
from segsync.simulator.state import SimulatorState


def lists_with_members(state: SimulatorState) -> dict[str, list[str]]:
    """``{"<title>": [emails, sorted]}`` for every list.

    Lists share a title only when created twice; then each of them is keyed
    ``"<title> [<list_id>]"``, so none hides another.
    """
    titles = [item.title for item in state.lists.values()]
    answer: dict[str, list[str]] = {}
    for item in state.lists.values():
        key = item.title if titles.count(item.title) == 1 else f"{item.title} [{item.list_id}]"
        answer[key] = sorted(state.contacts[cid].email for cid in item.members.ids())
    return answer


def delete_list(state: SimulatorState, list_id: str) -> Reply:
    """Delete the list: its memberships go, its contacts stay; its id is unknown from now on."""
    found = state.lists.pop(list_id, None)
    if found is None:
        return error(404, LIST_NOT_FOUND)
    for contact_id in found.members.ids():
        state.contacts[contact_id].lists.remove(list_id)
    return Reply(200, {"deleted": list_id, "title": found.title, "members": len(found.members)})


def rename_list(state: SimulatorState, list_id: str, body: bytes) -> Reply:
    """Give the list a new title; its id and members stay."""
    found = state.lists.get(list_id)
    if found is None:
        return error(404, LIST_NOT_FOUND)
    title = _body(body).get("title")
    if not isinstance(title, str) or not title.strip():
        return error(400, 'The body must be {"title": "<new list title>"} with a non-empty title.')
    found.title = title
    return Reply(200, {"list_id": list_id, "title": title})


def unsubscribe(state: SimulatorState, ref: str) -> Reply:
    """The contact unsubscribes (a click in an email, or by hand in the web app)."""
    record = state.find(ref)
    if record is None:
        return error(404, CONTACT_NOT_FOUND)
    state.unsubscribe(record)
    return Reply(200, {"contact_id": record.contact_id, "unsubscribed": True})


def _body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def route(state: SimulatorState, method: str, path: str, body: bytes) -> Reply | None:
    """Answer a by-hand operation below ``/_sim``; ``None`` when ``path`` names none."""
    head, _, rest = path.partition("/")
    if head == "lists" and rest and "/" not in rest:
        if method == "DELETE":
            return delete_list(state, rest)
        if method == "POST":
            return rename_list(state, rest, body)
    if head == "contacts" and rest.endswith("/unsubscribe") and method == "POST":
        return unsubscribe(state, rest[: -len("/unsubscribe")])
    return None
