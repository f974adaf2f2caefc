"""The checkpoint stage's arithmetic (X7, X9): what acknowledged batches mean for the sync state
and the counts, across attempts of one run."""

from __future__ import annotations

import pytest

from segsync.destinations.base import BatchResult, RecordOutcome
from segsync.domain.plan import UpsertItem
from segsync.domain.runs import RunCounts
from segsync.services.sync.tally import Ack, Tally


def item(email: str, segment: str | None = "1", digest: str = "h1") -> UpsertItem:
    return UpsertItem(email, {}, {}, segment, digest)


def ok(*emails: str) -> BatchResult:
    return BatchResult([RecordOutcome(e, True, f"person_{e}") for e in emails], requests=1)


def test_a_contact_counts_once_as_added_or_updated_however_many_items_it_had() -> None:
    tally = Tally()
    tally.planned(hashes={"old@x.org": "h0"}, unchanged=3, items=4)
    changes = tally.acknowledge(
        [
            Ack([item("new@x.org", "1"), item("old@x.org", "1")], ok("new@x.org", "old@x.org")),
            Ack([item("new@x.org", "2")], ok("new@x.org")),
        ]
    )
    assert (tally.counts.added, tally.counts.updated, tally.counts.unchanged) == (1, 1, 3)
    assert tally.items_done == 3
    assert tally.items_total == 4
    assert changes.hashes == {"new@x.org": "h1", "old@x.org": "h1"}
    assert sorted(changes.memberships) == [(1, "new@x.org"), (1, "old@x.org"), (2, "new@x.org")]
    assert changes.contact_ids["new@x.org"] == "person_new@x.org"


@pytest.mark.parametrize("told", [True, False], ids=["several-known", "several-unknown"])
def test_only_contacts_with_several_items_are_remembered_as_counted(told: bool) -> None:
    """Told which emails have several items (the plan knows), the tally remembers only those
    as counted (a set of every contact was 4 MB of a 100k first run); the counts are the same
    either way, and an email acknowledged twice still counts once."""
    tally = Tally()
    several = {"two@x.org"} if told else None
    tally.planned(hashes={"old@x.org": "h0"}, unchanged=0, items=4, several=several)
    first = [item("two@x.org", "1"), item("old@x.org", None)]
    second = [item("two@x.org", "2"), item("one@x.org")]
    tally.acknowledge([Ack(first, ok("two@x.org", "old@x.org"))])
    tally.acknowledge([Ack(second, ok("two@x.org", "one@x.org"))])
    assert (tally.counts.added, tally.counts.updated) == (2, 1)
    remembered = tally._counted  # the memory in question
    assert remembered == ({"two@x.org"} if told else {"two@x.org", "old@x.org", "one@x.org"})


def test_the_change_record_writes_the_profile_key_as_text() -> None:
    """Items carry the profile key as the profile store gave it (no text of its own per
    contact); the change record and the rejects write it as text."""
    tally = Tally()
    tally.planned(hashes={}, unchanged=0, items=2)
    sent = UpsertItem("a@x.org", {}, {}, "1", "h1", 7)
    refused = UpsertItem("b@x.org", {}, {}, "1", "h1", 8)
    outcomes = [*ok("a@x.org").outcomes, RecordOutcome("b@x.org", False, reason="no")]
    changes = tally.acknowledge([Ack([sent, refused], BatchResult(outcomes, requests=1))])
    assert [(c.email, c.profile_id) for c in changes.changes] == [
        ("a@x.org", "7"),
        ("b@x.org", "8"),
    ]
    assert [(r.email, r.profile_id) for r in changes.rejects] == [("b@x.org", "8")]


def test_a_refused_contact_is_a_reject_once_and_leaves_no_state() -> None:
    tally = Tally()
    tally.read(5, 1, 0, 1)  # members, invalid, duplicates, conversion rejected
    refused = BatchResult(
        [
            RecordOutcome("bad@x.org", False, reason="Rejected email address"),
            *ok("a@x.org").outcomes,
        ],
        requests=2,
    )
    first = tally.acknowledge([Ack([item("bad@x.org"), item("a@x.org")], refused)])
    again = tally.acknowledge([Ack([item("bad@x.org", "2")], refused)])
    assert [r.email for r in first.rejects] == ["bad@x.org"]
    assert again.rejects == []
    assert first.refused == ["bad@x.org"]
    assert "bad@x.org" not in first.hashes
    assert tally.counts.rejected == 2  # one conversion, one refused by the destination
    assert tally.api_rejected == 1


def test_a_resumed_attempt_accumulates_what_earlier_attempts_saved() -> None:
    base = RunCounts(members=9, added=100, updated=5, removed=2, requests=7)
    tally = Tally(base, base_done=107)
    tally.planned(hashes={}, unchanged=150, items=20)
    tally.acknowledge([Ack([item("z@x.org")], ok("z@x.org"))])
    tally.removed(4, were_members=3)  # one confirmed a pending membership absent
    tally.requests(4)
    snap = tally.snapshot()
    assert (snap.counts.added, snap.counts.removed, snap.counts.requests) == (101, 5, 11)
    assert snap.counts.unchanged == 150 - 105  # what earlier attempts sent is not unchanged
    assert (snap.items_done, snap.items_total) == (112, 127)
    progress = tally.progress(42, "sending")
    assert (progress.run_id, progress.phase, progress.items_done) == (42, "sending", 112)


def test_a_first_attempt_vouches_for_contacts_the_state_did_not_have() -> None:
    """In a run's first attempt, an email with no acknowledged contact in the state it planned
    on is a new contact with no previous payload: its rows say so, and the store looks up only
    the others (one look-up less per commit of a first run)."""
    tally = Tally()
    tally.planned(hashes={"old@x.org": "h0"}, unchanged=0, items=3)
    batch = [item("new@x.org", "1"), item("old@x.org", "1")]
    changes = tally.acknowledge([Ack(batch, ok("new@x.org", "old@x.org"))])
    again = tally.acknowledge([Ack([item("new@x.org", "2")], ok("new@x.org"))])
    vouched = [{r.email for r in c.changes if r.new_contact} for c in (changes, again)]
    assert vouched == [{"new@x.org"}, {"new@x.org"}]
    rows = {r.email: (r.previous, r.new_contact) for r in changes.changes}
    assert rows["new@x.org"] == (None, True)
    assert rows["old@x.org"] == (None, False)  # left for the store to look up
    assert [(r.previous, r.new_contact) for r in again.changes] == [(None, True)]


def test_a_resumed_attempt_vouches_for_no_one() -> None:
    """An earlier attempt may have recorded the contact already: every email is looked up."""
    tally = Tally(RunCounts(added=1), base_done=1)
    tally.planned(hashes={}, unchanged=0, items=1)
    changes = tally.acknowledge([Ack([item("new@x.org")], ok("new@x.org"))])
    assert not any(r.new_contact for r in changes.changes)
    assert [(r.previous, r.new_contact) for r in changes.changes] == [(None, False)]


def test_only_items_that_change_a_known_contact_s_fields_are_written_ahead_as_changing() -> None:
    """Against the state the plan was made on: a known contact sent with another hash is
    changing; one sent with its recorded hash (a new list only) and a new contact are not. A
    first run, whose state knows no contact, names none (it writes nothing more)."""
    tally = Tally()
    tally.planned(hashes={"changed@x.org": "h0", "same@x.org": "h1"}, unchanged=0, items=4)
    batch = [
        item("changed@x.org", None),
        item("changed@x.org", "2"),
        item("new@x.org"),
        item("same@x.org", "2"),
    ]
    assert tally.changing(batch) == [("changed@x.org", "h1"), ("changed@x.org", "h1")]
    first = Tally()
    first.planned(hashes={}, unchanged=0, items=4)
    assert first.changing(batch) == []
