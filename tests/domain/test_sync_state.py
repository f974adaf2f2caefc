"""The sync state as a run holds it: memberships per contact (memory), the same set of pairs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.domain.sync_state import Memberships, SyncStateView

EMAILS = st.sampled_from(["a@x.io", "b@x.io", "c@x.io"])
PAIRS = st.sets(st.tuples(st.sampled_from(["1", "2", "10"]), EMAILS))


@settings(deadline=None)  # a busy machine (CI shares its cores) must not fail an example
@given(pairs=PAIRS, other=PAIRS)
def test_memberships_are_the_set_of_their_pairs(
    pairs: set[tuple[str, str]], other: set[tuple[str, str]]
) -> None:
    held = Memberships(sorted(pairs) * 2)  # pairs twice count once
    assert held == pairs
    assert len(held) == len(pairs)
    assert sorted(held) == sorted(pairs)
    assert all(pair in held for pair in pairs)
    assert not any(pair in held for pair in other - pairs)
    assert (held | other) == pairs | other
    assert (held - other) == pairs - other
    assert held.per_segment() == {s: sum(1 for t, _ in pairs if t == s) for s, _ in pairs}
    assert held.without({"1"}) == {p for p in pairs if p[0] != "1"}
    for email in ("a@x.io", "b@x.io", "c@x.io", "d@x.io"):
        assert held.segments_of(email) == {s for s, e in pairs if e == email}
    assert ("1",) not in held
    assert "1" not in held


def test_contacts_share_their_segment_sets_and_the_given_email_texts() -> None:
    """Memory: one frozenset per distinct set of segments, and each email the text object of
    ``emails`` (the keys of the state's hashes), not a copy of its own."""
    hashes = {f"p{n}@x.io": "h" for n in range(100)}
    emails = {email: email for email in hashes}
    copies = [("1", "".join(e)) for e in hashes] + [("2", "".join(e)) for e in list(hashes)[::2]]
    held = Memberships(copies, emails=emails)
    assert {id(segments) for segments in held.by_email.values()} == {
        id(held.segments_of("p0@x.io")),
        id(held.segments_of("p1@x.io")),
    }
    assert all(any(email is key for key in hashes) for email in held.by_email)
    assert len(held) == 150


def test_a_state_built_from_a_set_holds_its_memberships_per_contact() -> None:
    state = SyncStateView(
        {"a@x.io": "h"},
        {("1", "a@x.io"), ("2", "a@x.io")},  # type: ignore[arg-type]
        {"1": "L1", "2": "L2"},
        pending=frozenset({("2", "b@x.io")}),
    )
    assert isinstance(state.memberships, Memberships)
    assert not state.needs("a@x.io", "h", "1")
    assert state.needs("a@x.io", "h", "3")  # no such list
    assert state.needs("b@x.io", "h", "2")  # pending is not known
    assert state.recorded_per_segment() == {"1": 1, "2": 2}
