"""The clean stage (X2): member rows become one contact per distinct valid email; invalid
emails, duplicates, forgotten people and values that do not fit are set aside with reasons."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.emails import email_digest, normalise_email
from segsync.domain.mapping import FieldMapping, build_contact, contact_hash
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


def test_a_shared_email_is_one_contact_on_the_union_of_the_lists_whatever_the_order() -> None:
    cleaner = Cleaner(MAPPING, "id")
    cleaner.row("1", row(9, "same@example.com", first="Nine"))
    cleaner.row("2", row(4, "same@example.com", first="Four"))
    cleaner.row("3", row(9, "same@example.com", first="Nine"))  # the higher id, again
    scan = cleaner.finish()
    (contact,) = scan.desired()
    assert contact.fields == {"FirstName": "Four"}  # the lowest profile id's values
    assert contact.segments == {"1", "2", "3"}  # every profile's segments count
    (reject,) = scan.rejects
    assert (reject.kind, reject.profile_id) == ("merged", "9")
    assert "profile 4" in reject.reason
    assert scan.duplicates == 1
    assert scan.missing == {}


def test_a_merged_segment_that_must_be_sent_asks_for_the_winners_row_again() -> None:
    """The winner (id 4) is unchanged on list 1, so its payload was not kept; the merged
    profile 9 puts the email on list 2, which it is not on yet: the row of 4 is read again."""
    known = {("1", "same@example.com")}

    def needs(email: str, _digest: str, segment: str) -> bool:
        return (segment, email) not in known

    cleaner = Cleaner(MAPPING, "id", needs)
    cleaner.row("1", row(4, "same@example.com", first="Four"))
    cleaner.row("2", row(9, "same@example.com", first="Nine"))
    scan = cleaner.finish()
    assert scan.missing == {4: "same@example.com"}
    cleaner.fill(row(4, "same@example.com", first="Four"))
    (contact,) = scan.desired()
    assert contact.segments == {"1", "2"}
    assert contact.fields == {"FirstName": "Four"}


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


def test_contacts_needing_nothing_are_handed_to_the_plan_apart() -> None:
    """A contact whose payload ``needs_payload`` refused for every segment is settled: the plan
    gets its email and segments only; one needing its payload for any segment is desired."""
    wanted = {("b@example.com", "2")}
    cleaner = Cleaner(MAPPING, "id", lambda email, _h, segment: (email, segment) in wanted)
    cleaner.row("1", row(1, "a@example.com"))
    cleaner.row("1", row(2, "b@example.com"))
    cleaner.row("2", row(2, "b@example.com"))
    cleaner.row("2", row(3, "c@example.com", first="Cy"))
    scan = cleaner.finish()
    assert [c.email for c in scan.desired(settled_apart=True)] == ["b@example.com"]
    assert sorted(scan.settled()) == [("a@example.com", {"1"}), ("c@example.com", {"2"})]
    assert [c.email for c in scan.desired()] == ["a@example.com", "b@example.com", "c@example.com"]
    assert list(Cleaner(MAPPING, "id").finish().settled()) == []


def test_a_contact_keeps_its_profile_key_as_read() -> None:
    """The key object the profile store gave, not a text made of it per contact (56 bytes
    each: 5 MB of a 100k first run); the run's records write it as text."""
    key = 10**6 + 1
    cleaner = Cleaner(MAPPING, "id")
    cleaner.row("1", row(key, "a@example.com"))
    (contact,) = cleaner.finish().desired()
    assert contact.profile_id is key


def test_contacts_with_the_same_segments_share_one_set_of_them() -> None:
    """Memory: a run keeps the segments of up to millions of contacts; a set each was 216
    bytes, one shared frozenset per distinct combination costs nothing per contact."""
    cleaner = Cleaner(MAPPING, "id")
    for pid in range(1, 201):
        cleaner.row("1", row(pid, f"p{pid}@example.com"))
    for pid in range(1, 201, 2):
        cleaner.row("2", row(pid, f"p{pid}@example.com"))
    scan = cleaner.finish()
    groups = {id(entry.segments): entry.segments for entry in scan.entries.values()}
    assert sorted(map(sorted, groups.values())) == [["1"], ["1", "2"]]
    assert {c.segments for c in scan.desired()} == {frozenset({"1"}), frozenset({"1", "2"})}


def test_contacts_without_custom_values_share_one_empty_part() -> None:
    """Memory: a payload kept with no custom values (most mappings map none) holds the one
    shared empty dict, not an empty dict of its own (64 bytes a contact); payloads with values
    keep their own."""
    mapping = FieldMapping(
        email="Email", extra=(("custom:integer:Staff", "Staff"),), catalogue=AUTOPILOT_FIELDS
    )
    cleaner = Cleaner(mapping, "id")
    for pid in range(1, 101):
        cleaner.row("1", row(pid, f"p{pid}@example.com", staff=pid if pid % 10 == 0 else None))
    contacts = list(cleaner.finish().desired())
    empty = [c.custom for c in contacts if not c.custom]
    assert len(empty) == 90
    assert len({id(custom) for custom in empty}) == 1
    with_values = [c.custom for c in contacts if c.custom]
    assert len({id(custom) for custom in with_values}) == 10
    assert {c.custom["integer--Staff"] for c in contacts if c.custom} == set(range(10, 101, 10))


def test_an_unchanged_contact_shares_the_known_hash_text() -> None:
    """A rerun holds the sync state's hash of every contact; a contact whose hash equals it
    keeps that very text, not an equal copy (113 bytes per contact), whether its hash was made
    by Python (a row) or came with the row (hashed by the profile engine); a changed contact
    keeps its own."""
    first = Cleaner(MAPPING, "id")
    for pid, email in enumerate(("ann@example.com", "bob@example.com", "cy@example.com")):
        first.row("1", row(pid, email))
    before = {email: entry.payload_hash for email, entry in first.finish().entries.items()}
    known = {email: "".join(digest) for email, digest in before.items()}  # equal copies
    known["cy@example.com"] = "0" * 64  # Cy changed since
    assert all(known[e] is not before[e] for e in known)
    again = Cleaner(MAPPING, "id", known_hashes=known)
    again.row("1", row(0, "ann@example.com"))
    emails = ["bob@example.com", "cy@example.com"]
    again.hashed("1", [1, 2], emails, [before[e] for e in emails], [True, True])
    entries = again.finish().entries
    assert entries["ann@example.com"].payload_hash is known["ann@example.com"]
    assert entries["bob@example.com"].payload_hash is known["bob@example.com"]
    assert entries["cy@example.com"].payload_hash is before["cy@example.com"]


# -- the order of the rows within a segment does not matter -------------------------------------
# The read stage takes each segment's members as the profile engine streams them (unordered:
# ordering them by id held every row in DuckDB before the first came out). The clean stage's
# outcome must then be the same whatever order a segment's rows come in.

_PEOPLE = st.lists(
    st.tuples(
        st.integers(1, 12),  # profile id
        st.sampled_from(["a@example.com", "A@example.com ", "b@example.com", "c@example.com",
                         "not an email", None]),
        st.sampled_from(["Ann", "Bo"]),
        st.sampled_from([None, 3, 4.5]),  # 4.5 does not fit the integer field: set aside
    ),
    max_size=10,
    unique_by=lambda person: person[0],
)  # fmt: skip


def _outcome(scan: Any) -> tuple[Any, ...]:
    entries = {
        email: (e.profile_id, e.payload_hash, e.fields, e.segments, e.has_payload)
        for email, e in scan.entries.items()
    }
    rejects = sorted((r.kind, r.profile_id, r.email or "", r.reason) for r in scan.rejects)
    counts = (scan.members, scan.invalid, scan.duplicates, scan.conversion_rejected)
    return entries, rejects, counts, scan.missing, scan.per_segment


@settings(max_examples=300, deadline=None)
@given(
    people=_PEOPLE,
    segments=st.lists(st.sets(st.integers(1, 12)), min_size=1, max_size=3),
    wanted=st.sets(st.tuples(st.sampled_from(["a@example.com", "b@example.com"]),
                             st.sampled_from(["1", "2", "3"]))),
    order=st.randoms(use_true_random=False),
    hashed=st.booleans(),
)  # fmt: skip
def test_the_order_of_a_segments_rows_does_not_change_the_outcome(
    people: list[tuple[int, str | None, str, Any]],
    segments: list[set[int]],
    wanted: set[tuple[str, str]],
    order: random.Random,
    hashed: bool,
) -> None:
    """Segment after segment, each segment's members in id order or shuffled: the same
    contacts (winner, hash, payload, lists), rejects, counts and payloads to read again —
    through rows built one by one and through hashes read with the rows (``hashed``, for the
    rows whose values go out as they are)."""
    by_id = {pid: row(pid, email, first, staff) for pid, email, first, staff in people}

    def needs(email: str, _digest: str, segment: str) -> bool:
        return (email, segment) in wanted

    def scan(shuffle: bool) -> tuple[Any, ...]:
        cleaner = Cleaner(MAPPING, "id", needs)
        for number, members in enumerate(segments, start=1):
            rows = [by_id[pid] for pid in sorted(members) if pid in by_id]
            if shuffle:
                order.shuffle(rows)
            if hashed and all(r["Staff"] is None or r["Staff"] == 3 for r in rows):
                digests = [contact_hash(MAPPING, build_contact(MAPPING, r)) for r in rows]
                emails = [r["Email"] for r in rows]
                for at, email in cleaner.hashed(str(number), [r["id"] for r in rows], emails,
                                                digests, [False] * len(rows)):  # fmt: skip
                    cleaner.complete(rows[at], email)
            else:
                for r in rows:
                    cleaner.row(str(number), r)
            cleaner.scan.per_segment[str(number)] = len(rows)
        result = cleaner.finish()
        for pid in result.missing:
            cleaner.fill(by_id[pid])
        return _outcome(result)

    assert scan(shuffle=True) == scan(shuffle=False)


@settings(max_examples=300, deadline=None)
@given(
    people=_PEOPLE,
    segments=st.lists(st.sets(st.integers(1, 12)), min_size=1, max_size=3),
    order=st.randoms(use_true_random=False),
)
def test_the_rules_hold_whatever_the_rows(
    people: list[tuple[int, str | None, str, Any]],
    segments: list[set[int]],
    order: random.Random,
) -> None:
    """Against the rules as stated, worked out from the whole member list at once: every
    profile counted once; an invalid email or a value that does not fit sets a profile aside;
    the valid rest are one contact per email, with the lowest profile id's values and the
    union of every such profile's segments, and each other profile named as merged."""
    by_id = {pid: row(pid, email, first, staff) for pid, email, first, staff in people}
    cleaner = Cleaner(MAPPING, "id")
    for number, members in enumerate(segments, start=1):
        rows = [by_id[pid] for pid in members if pid in by_id]
        order.shuffle(rows)
        for r in rows:
            cleaner.row(str(number), r)
    scan = cleaner.finish()

    read = {pid for members in segments for pid in members if pid in by_id}
    emails = {pid: normalise_email(by_id[pid]["Email"])[0] for pid in read}
    valid = {pid for pid in read if emails[pid] is not None and by_id[pid]["Staff"] != 4.5}
    winners: dict[str, int] = {}
    lists: dict[str, set[str]] = {}
    for pid in sorted(valid):
        winners.setdefault(emails[pid], pid)
        lists.setdefault(emails[pid], set()).update(
            str(n) for n, members in enumerate(segments, start=1) if pid in members
        )
    assert {e: (x.profile_id, x.segments) for e, x in scan.entries.items()} == {
        e: (pid, frozenset(lists[e])) for e, pid in winners.items()
    }
    assert all(x.fields["FirstName"] == by_id[x.profile_id]["First"] for x in scan.entries.values())
    merged = {(str(pid), emails[pid]) for pid in valid if winners[emails[pid]] != pid}
    assert {(r.profile_id, r.email) for r in scan.rejects if r.kind == "merged"} == merged
    assert (scan.members, scan.duplicates) == (len(read), len(merged))
    assert scan.invalid == sum(1 for pid in read if emails[pid] is None)
    assert scan.conversion_rejected == len(read) - len(valid) - scan.invalid


@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=12),  # profile id
            st.sampled_from(["a@x.com", " A@X.com", "b@x.com", "B@x.com ", "bad", None, "c@x.com"]),
            st.sampled_from(["1", "2", "3"]),  # segment
            st.sampled_from([None, 5, 12.5]),  # 12.5 does not fit the integer field
        ),
        max_size=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_draining_after_each_email_gives_what_finishing_gives(
    rows: list[tuple[int, str | None, str, Any]],
) -> None:
    """A first run read in email order (services/sync/stream.py) drains the cleaner after
    each email's rows: the contacts, counts and rejects are those of one finish."""
    email_of: dict[int, str | None] = {}
    fed = []
    for pid, email, segment, staff in rows:
        email = email_of.setdefault(pid, email)  # a profile has one email
        first = f"P{pid}"
        fed.append((segment, row(pid, email, first=first, staff=5 if pid % 2 else staff)))

    def key(item: tuple[str, dict[str, Any]]) -> str:
        raw = item[1]["Email"]
        return "\uffff" if raw is None else raw.strip().lower()

    whole = Cleaner(MAPPING, "id")
    for segment, member in fed:
        whole.row(segment, member)
    expected = whole.finish()

    entries = {}
    by_email: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for item in sorted(fed, key=key):
        by_email.setdefault(key(item), []).append(item)
    drained = Cleaner(MAPPING, "id")
    for group in by_email.values():
        for segment, member in group:
            drained.row(segment, member)
        entries.update(drained.drain())
    scan = drained.scan

    assert entries == expected.entries
    assert not drained.scan.entries  # handed over
    counts = ("members", "invalid", "duplicates", "conversion_rejected", "forgotten")
    assert [getattr(scan, c) for c in counts] == [getattr(expected, c) for c in counts]
    assert sorted(scan.rejects, key=repr) == sorted(expected.rejects, key=repr)
