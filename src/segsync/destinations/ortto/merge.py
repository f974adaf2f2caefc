"""A batch to Ortto: one ``POST /v1/person/merge`` for its people, then one
``PUT /v1/audience/subscribe`` per audience for those Ortto took.

Ortto answers a merge with one entry per person, in order; a person it refuses gets an error
entry and the others are saved. If it refuses the whole request instead (400), the batch is split
in halves, down to single people, so one bad address never sinks the others (at most 2n - 1
requests, only then). A subscription to an audience that no longer exists (404) raises
:class:`~segsync.errors.UnknownList`: the run makes the audience again and sends again (the
merge is idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segsync.destinations.base import BatchResult, RecordOutcome, UpsertItem
from segsync.destinations.ortto.client import OrttoClient, unexpected
from segsync.destinations.ortto.person import audiences_of, person_json
from segsync.errors import UnknownList


async def upsert_people(client: OrttoClient, items: Sequence[UpsertItem]) -> BatchResult:
    """Merge ``items`` (≤ 100, distinct emails), subscribe them; one outcome per item."""
    outcomes, requests = await _merge_isolating(client, items)
    taken = [item for item, outcome in zip(items, outcomes, strict=True) if outcome.ok]
    for audience_id, emails in audiences_of(taken).items():
        reply = await client.subscribe(audience_id, emails, True)
        requests += reply.attempts
        if reply.status == 404:
            raise UnknownList(
                audience_id, f"Ortto has no audience {audience_id} (deleted?): {reply.message}"
            )
        if not reply.ok:
            raise unexpected(reply, "subscribing people to an audience (PUT /audience/subscribe)")
        missed = _not_found(reply.data)
        for index, outcome in enumerate(outcomes):
            if outcome.ok and items[index].list_id == audience_id and outcome.email in missed:
                reason = f"Ortto could not find the person to subscribe to audience {audience_id}"
                outcomes[index] = RecordOutcome(outcome.email, False, reason=reason)
    return BatchResult(outcomes, requests)


def _not_found(data: Any) -> set[str]:
    """The emails a subscribe answer says it found no person for."""
    answers = data.get("people") if isinstance(data, dict) else None
    return {
        str(answer.get("email"))
        for answer in answers or []
        if isinstance(answer, dict) and answer.get("status") == "not-found"
    }


async def _merge_isolating(
    client: OrttoClient, items: Sequence[UpsertItem]
) -> tuple[list[RecordOutcome], int]:
    people = [person_json(item) for item in items]
    outcomes: dict[int, RecordOutcome] = {}
    requests = 0
    pending: list[list[int]] = [list(range(len(items)))] if items else []
    while pending:
        group = pending.pop()
        reply = await client.merge_people([people[i] for i in group])
        requests += reply.attempts
        if reply.ok:
            for i, answer in zip(group, _answers(reply.data, len(group), reply), strict=True):
                outcomes[i] = _outcome(items[i].email, answer)
        elif reply.status != 400:
            raise unexpected(reply, "POST /person/merge")
        elif len(group) == 1:
            reason = reply.message or "Ortto refused the person (400 Bad Request)"
            outcomes[group[0]] = RecordOutcome(items[group[0]].email, False, reason=reason)
        else:
            middle = len(group) // 2
            pending.extend([group[middle:], group[:middle]])
    return [outcomes[i] for i in range(len(items))], requests


def _answers(data: Any, size: int, reply: Any) -> list[dict[str, Any]]:
    answers = data.get("people") if isinstance(data, dict) else None
    if not isinstance(answers, list) or len(answers) != size:
        raise unexpected(reply, "POST /person/merge (one answer per person expected)")
    return [answer if isinstance(answer, dict) else {} for answer in answers]


def _outcome(email: str, answer: dict[str, Any]) -> RecordOutcome:
    person_id = answer.get("person_id")
    if answer.get("status") == "error" or not person_id:
        reason = str(answer.get("error") or answer.get("message") or "Ortto refused the person")
        return RecordOutcome(email, False, reason=reason)
    return RecordOutcome(email, True, str(person_id))
