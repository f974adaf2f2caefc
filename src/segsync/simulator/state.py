"""The simulator's in-memory Autopilot account: contacts, lists, custom fields; saved atomically."""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from segsync.simulator.contacts import ContactError, ContactRecord, ContactWrite
from segsync.simulator.persist import SeededState

PAGE_SIZE = 100
STATE_FORMAT = "segsync-simulator-state"
STATE_VERSION = 1


class OrderedIndex:
    """Contact ids in creation order (by ``seq``), for bookmark paging in O(log n) a page."""

    def __init__(self) -> None:
        self._seqs: list[int] = []
        self._ids: dict[int, str] = {}

    def add(self, seq: int, contact_id: str) -> bool:
        if seq in self._ids:
            return False
        insort(self._seqs, seq)
        self._ids[seq] = contact_id
        return True

    def remove(self, seq: int) -> bool:
        if self._ids.pop(seq, None) is None:
            return False
        del self._seqs[bisect_left(self._seqs, seq)]
        return True

    def __contains__(self, seq: int) -> bool:
        return seq in self._ids

    def __len__(self) -> int:
        return len(self._seqs)

    def ids(self) -> list[str]:
        return [self._ids[seq] for seq in self._seqs]

    def page_after(self, after_seq: int | None, size: int) -> tuple[list[str], bool]:
        start = 0 if after_seq is None else bisect_right(self._seqs, after_seq)
        chunk = self._seqs[start : start + size]
        return [self._ids[seq] for seq in chunk], start + size < len(self._seqs)


@dataclass
class ContactList:
    list_id: str
    title: str
    members: OrderedIndex = field(default_factory=OrderedIndex)


@dataclass
class Page:
    records: list[ContactRecord]
    total: int
    bookmark: str | None


class SimulatorState(SeededState):
    """Contacts keyed by id with a case-insensitive email index, lists, custom field types.

    Ids come from ``uuid5(salt, counter)``: unique, and reproducible when the salt is seeded.
    The counter survives :meth:`clear`, so a reset never hands out an id again.
    """

    state_format = STATE_FORMAT
    state_version = STATE_VERSION

    def clear(self) -> None:
        self.contacts: dict[str, ContactRecord] = {}
        self.by_email: dict[str, str] = {}
        self.everyone = OrderedIndex()
        self.lists: dict[str, ContactList] = {}
        self.custom_types: dict[str, str] = {}
        self._next_seq = 1
        self._gone: dict[str, int] = {}

    @property
    def instance_id(self) -> str:
        return uuid.uuid5(self.salt, "instance").hex

    def _new_uuid(self, kind: str) -> uuid.UUID:
        return self._next_uuid(kind)

    # -- contacts -------------------------------------------------------------------------

    def find(self, ref: str) -> ContactRecord | None:
        """A contact by id (``person_...``) or by email, as ``{contact}`` in a path."""
        if "@" in ref:
            contact_id = self.by_email.get(ref.strip().lower())
            return None if contact_id is None else self.contacts.get(contact_id)
        return self.contacts.get(ref)

    def check_writes(self, writes: Iterable[ContactWrite]) -> None:
        """Refuse the whole request before anything is stored (``ContactError``)."""
        types = dict(self.custom_types)
        owners: dict[str, str | None] = {}
        for index, write in enumerate(writes):
            if write.list_id is not None and write.list_id not in self.lists:
                raise ContactError(f"_autopilot_list {write.list_id!r} is not a known list id.")
            for name, (kind, _) in write.custom.items():
                known = types.setdefault(name, kind)
                if known != kind:
                    raise ContactError(
                        f"Custom field {name!r} is of type {known}; it cannot be written as {kind}."
                    )
            key = write.email.strip().lower()
            owner = owners[key] if key in owners else self.by_email.get(key)
            if write.new_email is None:
                owners[key] = owner or f"new:{index}"
                continue
            new_key = write.new_email.strip().lower()
            holder = owners[new_key] if new_key in owners else self.by_email.get(new_key)
            if holder is not None and holder != owner and new_key != key:
                raise ContactError(
                    f"_NewEmail {write.new_email} already belongs to another contact."
                )
            owners[key] = None if new_key != key else owner
            owners[new_key] = owner or f"new:{index}"

    def apply_write(self, write: ContactWrite) -> str:
        """Upsert one checked contact keyed on its email; return its contact id."""
        now = self._wall_clock()
        record = self.find(write.email.strip()) if "@" in write.email else None
        if record is None:
            email = write.new_email or write.email
            contact_id = "person_" + str(self._new_uuid("person")).upper()
            record = ContactRecord(
                contact_id=contact_id,
                seq=self._next_seq,
                fields={**write.fields, "Email": email},
                created_at=now,
                updated_at=now,
            )
            self._next_seq += 1
            self.contacts[contact_id] = record
            self.by_email[email.strip().lower()] = contact_id
            self.everyone.add(record.seq, contact_id)
        else:
            record.fields.update(write.fields)
            if write.new_email is not None:
                del self.by_email[write.email.strip().lower()]
                record.fields["Email"] = write.new_email
                self.by_email[write.new_email.strip().lower()] = record.contact_id
            record.updated_at = now
        for name, (kind, value) in write.custom.items():
            self.custom_types.setdefault(name, kind)
            record.custom[name] = value
        if write.list_id is not None:
            self.add_member(self.lists[write.list_id], record)
        return record.contact_id

    def delete(self, record: ContactRecord) -> None:
        for list_id in record.lists:
            self.lists[list_id].members.remove(record.seq)
        self.everyone.remove(record.seq)
        self.by_email.pop(record.email.strip().lower(), None)
        del self.contacts[record.contact_id]
        self._gone[record.contact_id] = record.seq

    def unsubscribe(self, record: ContactRecord) -> None:
        record.fields["unsubscribed"] = True
        record.updated_at = self._wall_clock()

    # -- lists ----------------------------------------------------------------------------

    def create_list(self, title: str) -> ContactList:
        contact_list = ContactList("contactlist_" + str(self._new_uuid("list")), title)
        self.lists[contact_list.list_id] = contact_list
        return contact_list

    def add_member(self, contact_list: ContactList, record: ContactRecord) -> bool:
        """Add to the list; ``False`` when already a member (``not_modified``)."""
        if not contact_list.members.add(record.seq, record.contact_id):
            return False
        record.lists.append(contact_list.list_id)
        return True

    def remove_member(self, contact_list: ContactList, record: ContactRecord) -> bool:
        if not contact_list.members.remove(record.seq):
            return False
        record.lists.remove(contact_list.list_id)
        return True

    # -- paging ---------------------------------------------------------------------------

    def page(self, index: OrderedIndex, bookmark: str | None) -> Page:
        """Up to 100 contacts after ``bookmark``; the returned bookmark is ``None`` at the end.

        Raises ``LookupError`` for a bookmark that names no contact this state ever held.
        """
        after: int | None = None
        if bookmark is not None:
            record = self.contacts.get(bookmark)
            after = record.seq if record is not None else self._gone.get(bookmark)
            if after is None:
                raise LookupError(bookmark)
        ids, more = index.page_after(after, PAGE_SIZE)
        records = [self.contacts[contact_id] for contact_id in ids]
        return Page(records, len(index), records[-1].contact_id if more and records else None)

    # -- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            **self.header(),
            "next_seq": self._next_seq,
            "custom_types": self.custom_types,
            "contacts": [self.contacts[cid].to_json() for cid in self.everyone.ids()],
            "lists": [
                {"list_id": item.list_id, "title": item.title} for item in self.lists.values()
            ],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        self.read_header(data)
        self._next_seq = int(data["next_seq"])
        self.custom_types = dict(data["custom_types"])
        for item in data["lists"]:
            self.lists[item["list_id"]] = ContactList(item["list_id"], item["title"])
        for raw in data["contacts"]:
            record = ContactRecord.from_json(raw)
            self.contacts[record.contact_id] = record
            self.by_email[record.email.strip().lower()] = record.contact_id
            self.everyone.add(record.seq, record.contact_id)
            for list_id in record.lists:
                self.lists[list_id].members.add(record.seq, record.contact_id)
