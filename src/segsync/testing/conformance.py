"""The destination conformance kit: the scenarios every destination must pass against its fake.

A destination's test file is small: a harness over the destination's fake (its simulator, or an
in-process stand-in) and a test class that names it::

    class AutopilotHarness(ConformanceHarness):
        ...  # the five methods below

    class TestAutopilotConformance(DestinationConformance):
        def harness(self) -> ConformanceHarness:
            return AutopilotHarness()

pytest collects the ``test_`` methods the class inherits; each builds a fresh harness, so the
scenarios never see each other's lists or contacts. Async tests need pytest-asyncio in auto mode
(segsync's ``pyproject.toml`` sets it).

The harness is the only thing a destination writes, and it must not go through the destination
under test: it reads the fake's own state ("an independent view"), so a destination that sends
the wrong thing and reads it back the same wrong way still fails. What a harness provides:

* :meth:`~ConformanceHarness.destination`: a new, unused instance of the destination connected
  to the fake (``wrong_key=True``: with a key the fake refuses);
* :meth:`~ConformanceHarness.refuse`: from now on the fake refuses upserts of this email (its
  own per-record error), as a real API refuses an address it finds invalid;
* :meth:`~ConformanceHarness.list_titles`, :meth:`~ConformanceHarness.members` and
  :meth:`~ConformanceHarness.has_contact`: the fake's lists, a list's members and whether a
  contact exists, read from the fake itself;
* :meth:`~ConformanceHarness.sent_records`: every record the fake received in upserts, in order,
  exactly as it arrived on the wire (compared with :meth:`Destination.preview`);
* :meth:`~ConformanceHarness.delete_list`: delete a list in the fake as a person would by hand
  (its memberships go, its contacts stay);
* :meth:`~ConformanceHarness.close`: release the fake (optional).

The scenarios build their records from the destination's own field catalogue (a standard text
field, the first-name field, a custom integer field when it has one), so they exercise the same
keys an export would send.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from segsync.destinations.base import Destination, UpsertItem
from segsync.destinations.capabilities import CORE_SETTINGS, Capabilities
from segsync.destinations.registry import destination_class
from segsync.domain.fields import Target
from segsync.errors import AuthenticationFailed, InputError, NotFound, UnknownList

__all__ = ["ConformanceHarness", "DestinationConformance", "sample_items"]


class ConformanceHarness(ABC):
    """A destination's fake, as the conformance kit drives and reads it (module docstring)."""

    @abstractmethod
    def destination(self, *, wrong_key: bool = False) -> Destination:
        """A new instance of the destination under test, connected to the fake."""

    @abstractmethod
    def refuse(self, email: str) -> None:
        """Make the fake refuse upserts of ``email`` (compared case-insensitively) from now on."""

    @abstractmethod
    def list_titles(self) -> list[str]:
        """The titles of every list the fake holds, one entry per list."""

    @abstractmethod
    def members(self, list_id: str) -> set[str]:
        """The lower-cased emails of the members of the list ``list_id``, read from the fake."""

    @abstractmethod
    def has_contact(self, email: str) -> bool:
        """Whether the fake holds a contact with this email."""

    @abstractmethod
    def sent_records(self) -> list[Mapping[str, Any]]:
        """Every record the fake received in upserts, in order, as it arrived on the wire."""

    @abstractmethod
    def delete_list(self, list_id: str) -> None:
        """Delete the list in the fake, by hand: memberships go, contacts stay."""

    def close(self) -> None:  # noqa: B027 - optional: most fakes hold nothing to release
        """Release what the fake holds (threads, files); nothing by default."""


def sample_items(
    capabilities: Capabilities, count: int, *, list_id: str | None = None, prefix: str = "p"
) -> list[UpsertItem]:
    """``count`` records with distinct emails, filled from the destination's catalogue: its
    first-name field, its first standard text field and, when it has custom integer fields, one
    of those (under its wire key)."""
    catalogue = capabilities.catalogue
    text_fields = [item.key for item in catalogue.standard if item.value_type == "string"]
    custom_key = None
    if "integer" in catalogue.custom_types:
        custom_key = catalogue.write_key(Target("custom", "Conformance Score", "integer"))
    items = []
    for index in range(count):
        fields: dict[str, Any] = {}
        if catalogue.first_name_key:
            fields[catalogue.first_name_key] = f"First{index}"
        if text_fields:
            fields[text_fields[0]] = f"Value {index}"
        custom = {custom_key: index} if custom_key else {}
        email = f"{prefix}{index:04d}@conformance.example"
        items.append(UpsertItem(email, fields, custom, list_id))
    return items


class DestinationConformance:
    """The scenarios; subclass it as ``Test...`` and implement :meth:`harness`."""

    def harness(self) -> ConformanceHarness:
        raise NotImplementedError("return the destination's ConformanceHarness")

    @pytest.fixture
    def fake(self) -> Iterator[ConformanceHarness]:
        harness = self.harness()
        try:
            yield harness
        finally:
            harness.close()

    # --- what the type declares -------------------------------------------------------

    def test_capabilities_are_complete_and_registered(self, fake: ConformanceHarness) -> None:
        cls = type(fake.destination())
        caps = cls.capabilities
        assert re.fullmatch(r"[a-z][a-z0-9_-]*", caps.name), caps.name
        assert destination_class(caps.name) is cls, "add the class to destinations/registry.py"
        assert caps.display_name
        assert caps.description
        assert caps.display_name in caps.consent_statement, "the statement names the destination"
        assert caps.max_batch_size >= 1
        assert caps.default_rate_limit > 0
        assert caps.catalogue.destination == caps.display_name
        assert caps.catalogue.standard or caps.catalogue.custom_types
        assert {s.name for s in caps.settings} >= set(CORE_SETTINGS)
        for own in caps.own_settings():  # settings beyond the core ones are not stored: presets
            assert own.kind == "choice", f"{own.name}: a preset is a choice"
            assert own.sets in CORE_SETTINGS, f"{own.name}: a preset fills in a core setting"
            assert {choice for choice, _ in own.values} == set(own.choices), own.name
            assert own.default is None or own.default in own.choices, own.name

    # --- Connect ------------------------------------------------------------------------

    async def test_the_key_is_checked(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            assert destination.requests_made == 0
            info = await destination.check_credentials()
            assert info.instance_id
            assert destination.requests_made >= 1
            assert destination.throttled == 0
            assert destination.slowdown() is None  # no 429, so nothing slowed it down

    async def test_a_wrong_key_is_refused(self, fake: ConformanceHarness) -> None:
        async with fake.destination(wrong_key=True) as destination:
            with pytest.raises(AuthenticationFailed):
                await destination.check_credentials()

    # --- lists ----------------------------------------------------------------------------

    async def test_ensure_list_makes_one_list_per_title(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            first = await destination.ensure_list("Conformance: Gold")
            again = await destination.ensure_list("Conformance: Gold")
            other = await destination.ensure_list("Conformance: Silver")
        assert first == again != other
        assert sorted(fake.list_titles()) == ["Conformance: Gold", "Conformance: Silver"]

    async def test_ensure_list_looks_a_title_up_in_the_lists_it_is_given(
        self, fake: ConformanceHarness
    ) -> None:
        """``known`` (an ``existing_lists()`` answer): a title found there costs no request;
        one missing from it is made."""
        async with fake.destination() as destination:
            made = await destination.ensure_list("Conformance: known")
            known = await destination.existing_lists()
            before = destination.requests_made
            assert await destination.ensure_list("Conformance: known", known=known) == made
            assert destination.requests_made == before
            other = await destination.ensure_list("Conformance: not known", known=known)
        assert other != made
        assert sorted(fake.list_titles()) == ["Conformance: known", "Conformance: not known"]

    async def test_members_of_an_unknown_list_are_not_found(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            with pytest.raises(NotFound):
                [member async for member in destination.list_members("no-such-list")]

    async def test_existing_lists_show_a_list_deleted_by_hand_gone(
        self, fake: ConformanceHarness
    ) -> None:
        async with fake.destination() as destination:
            kept = await destination.ensure_list("Conformance: kept")
            gone = await destination.ensure_list("Conformance: gone")
            before = destination.requests_made
            assert await destination.existing_lists() == {
                kept: "Conformance: kept",
                gone: "Conformance: gone",
            }
            assert destination.requests_made > before
            fake.delete_list(gone)
            assert await destination.existing_lists() == {kept: "Conformance: kept"}

    async def test_a_batch_naming_a_deleted_list_raises_unknown_list(
        self, fake: ConformanceHarness
    ) -> None:
        async with fake.destination() as destination:
            caps = destination.capabilities
            gone = await destination.ensure_list("Conformance: deleted")
            await destination.upsert_batch(sample_items(caps, 2, list_id=gone))
            fake.delete_list(gone)
            items = sample_items(caps, 3, list_id=gone, prefix="late")
            with pytest.raises(UnknownList) as caught:
                await destination.upsert_batch(items)
            assert caught.value.list_id == gone
            again = await destination.ensure_list("Conformance: deleted")
            assert again != gone
            result = await destination.upsert_batch([replace(i, list_id=again) for i in items])
        assert all(o.ok for o in result.outcomes), result.rejected
        assert fake.members(again) == {item.email for item in items}
        assert fake.has_contact(sample_items(caps, 1)[0].email)  # deleting kept the contacts

    # --- upserts --------------------------------------------------------------------------

    async def test_a_full_batch_lands_with_its_memberships(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            caps = destination.capabilities
            list_id = await destination.ensure_list("Conformance: full batch")
            items = sample_items(caps, caps.max_batch_size, list_id=list_id)
            result = await destination.upsert_batch(items)
            assert [o.email for o in result.outcomes] == [item.email for item in items]
            assert all(o.ok for o in result.outcomes), result.rejected
            assert result.requests >= 1
            read_back = {m.email.lower() async for m in destination.list_members(list_id)}
        wanted = {item.email for item in items}
        assert read_back == wanted
        assert fake.members(list_id) == wanted

    async def test_a_refused_record_does_not_sink_its_batch(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            list_id = await destination.ensure_list("Conformance: refusals")
            items = sample_items(destination.capabilities, 5, list_id=list_id)
            fake.refuse(items[2].email)
            result = await destination.upsert_batch(items)
        assert [o.ok for o in result.outcomes] == [True, True, False, True, True]
        refused = result.outcomes[2]
        assert refused.email == items[2].email
        assert refused.reason
        assert fake.members(list_id) == {item.email for i, item in enumerate(items) if i != 2}
        assert not fake.has_contact(items[2].email)

    async def test_more_than_the_batch_size_is_refused_before_sending(
        self, fake: ConformanceHarness
    ) -> None:
        async with fake.destination() as destination:
            caps = destination.capabilities
            too_many = sample_items(caps, caps.max_batch_size + 1)
            with pytest.raises(InputError, match=str(caps.max_batch_size)):
                await destination.upsert_batch(too_many)
            twice = [*sample_items(caps, 1), *sample_items(caps, 1)]
            with pytest.raises(InputError, match="twice"):
                await destination.upsert_batch(twice)
            assert destination.requests_made == 0
        assert fake.sent_records() == []

    async def test_preview_is_exactly_what_is_sent(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            list_id = await destination.ensure_list("Conformance: preview")
            items = [
                *sample_items(destination.capabilities, 2, list_id=list_id),
                *sample_items(destination.capabilities, 1, prefix="nolist"),
            ]
            result = await destination.upsert_batch(items)
        assert all(o.ok for o in result.outcomes)
        assert fake.sent_records() == [type(destination).preview(item) for item in items]

    # --- removal and erasure --------------------------------------------------------------

    async def test_a_membership_is_removed_and_the_contact_stays(
        self, fake: ConformanceHarness
    ) -> None:
        async with fake.destination() as destination:
            list_id = await destination.ensure_list("Conformance: removals")
            items = sample_items(destination.capabilities, 2, list_id=list_id)
            await destination.upsert_batch(items)
            assert await destination.remove_membership(list_id, items[0].email) is True
            assert await destination.remove_membership(list_id, items[0].email) is False
            outsider = sample_items(destination.capabilities, 1, prefix="outsider")[0]
            await destination.upsert_batch([outsider])
            assert await destination.remove_membership(list_id, outsider.email) is False
        assert fake.members(list_id) == {items[1].email}
        assert fake.has_contact(items[0].email)

    async def test_forget_deletes_the_contact(self, fake: ConformanceHarness) -> None:
        async with fake.destination() as destination:
            list_id = await destination.ensure_list("Conformance: erasure")
            [item] = sample_items(destination.capabilities, 1, list_id=list_id)
            await destination.upsert_batch([item])
            assert fake.has_contact(item.email)
            before = destination.requests_made
            assert await destination.forget(item.email) is True
            assert destination.requests_made > before
            assert await destination.forget(item.email) is False
        assert not fake.has_contact(item.email)
        assert fake.members(list_id) == set()

    # --- the guard rails (docs/exports.md "Blast-radius hold", "Undo a run") ----------------

    async def test_an_approved_held_plan_removes_in_one_request_each(
        self, fake: ConformanceHarness
    ) -> None:
        """A held run, once approved, sends its removals: one request per membership (the
        fewest the contract allows), and nothing else."""
        async with fake.destination() as destination:
            list_id = await destination.ensure_list("Conformance: approved removals")
            items = sample_items(destination.capabilities, 10, list_id=list_id)
            await destination.upsert_batch(items)
            sent = len(fake.sent_records())
            before = destination.requests_made
            for item in items[:6]:  # 60% leave: the plan a hold stops until it is approved
                assert await destination.remove_membership(list_id, item.email) is True
            assert destination.requests_made - before == 6
        assert fake.members(list_id) == {item.email for item in items[6:]}
        assert len(fake.sent_records()) == sent  # removals upsert nothing

    async def test_an_undo_puts_lists_and_values_back(self, fake: ConformanceHarness) -> None:
        """What an undo sends — the memberships a run added removed, those it removed added
        back, the values before upserted again — leaves the lists as they were and the values
        last sent as they were before the run."""
        async with fake.destination() as destination:
            caps = destination.capabilities
            first = await destination.ensure_list("Conformance: undo 1")
            second = await destination.ensure_list("Conformance: undo 2")
            before = sample_items(caps, 3, list_id=first)
            await destination.upsert_batch(before)
            # the run: person 0 renamed and added to the second list, person 1 removed
            renamed = sample_items(caps, 3, list_id=second, prefix="p")[0]
            renamed = replace(renamed, fields={k: f"{v} (new)" for k, v in renamed.fields.items()})
            await destination.upsert_batch([renamed])
            assert await destination.remove_membership(first, before[1].email) is True
            # the undo
            assert await destination.remove_membership(second, before[0].email) is True
            back = [replace(before[0], list_id=None), replace(before[1], list_id=first)]
            result = await destination.upsert_batch(back)
            assert all(o.ok for o in result.outcomes), result.rejected
        assert fake.members(first) == {item.email for item in before}
        assert fake.members(second) == set()
        last = {}
        for record in fake.sent_records():
            last[_email_of(record)] = record
        preview = type(destination).preview
        assert last[before[0].email] == preview(replace(before[0], list_id=None))


def _email_of(record: Mapping[str, Any]) -> str:
    """The email of a record as sent (the first value that looks like one)."""
    for value in _values(record):
        if isinstance(value, str) and "@" in value:
            return value.lower()
    raise AssertionError(f"no email in the record {record!r}")


def _values(record: Any) -> Iterator[Any]:
    if isinstance(record, Mapping):
        for value in record.values():
            yield from _values(value)
    elif isinstance(record, list):
        for value in record:
            yield from _values(value)
    else:
        yield record
