"""The testbed's "API": accounts held in this process, keyed by base URL.

``open_account("https://testbed.invalid/shop", "key")`` makes an account a connection with that
base URL and key reaches; every test opens its own (a unique base URL) and closes it after.
Fault hooks: :meth:`TestbedAccount.refuse` makes the account refuse an email in upserts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_ACCOUNTS: dict[str, TestbedAccount] = {}
_LOCK = threading.Lock()


def _key(base_url: str) -> str:
    return base_url.strip().rstrip("/").lower()


def open_account(base_url: str, api_key: str) -> TestbedAccount:
    """A new, empty account at ``base_url`` (replacing any there) that accepts ``api_key``."""
    account = TestbedAccount(_key(base_url), api_key)
    with _LOCK:
        _ACCOUNTS[account.base_url] = account
    return account


def close_account(base_url: str) -> None:
    with _LOCK:
        _ACCOUNTS.pop(_key(base_url), None)


def find_account(base_url: str) -> TestbedAccount | None:
    with _LOCK:
        return _ACCOUNTS.get(_key(base_url))


@dataclass
class TestbedList:
    __test__ = False  # not a pytest test class

    list_id: str
    title: str
    members: list[str] = field(default_factory=list)


@dataclass
class TestbedAccount:
    """One account: its contacts (by lower-cased email), lists, the records it received (as
    sent) and the emails it refuses. Safe to use from one thread at a time per account."""

    __test__ = False  # not a pytest test class

    base_url: str
    api_key: str
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    lists: dict[str, TestbedList] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    made_lists: int = 0
    """Lists ever made: ids are never handed out twice, even after a deletion."""

    def refuse(self, email: str) -> None:
        """From now on, refuse upserts of ``email``."""
        self.refused.add(email.lower())

    def list_by_title(self, title: str) -> TestbedList | None:
        return next((item for item in self.lists.values() if item.title == title), None)

    def create_list(self, title: str) -> TestbedList:
        self.made_lists += 1
        made = TestbedList(f"tb-list-{self.made_lists}", title)
        self.lists[made.list_id] = made
        return made

    def delete_list(self, list_id: str) -> None:
        """Delete the list as a person would by hand: its members leave it, contacts stay."""
        del self.lists[list_id]

    def receive(self, record: Mapping[str, Any]) -> str | None:
        """Store one upserted record; the reason it is refused, or None."""
        self.received.append(dict(record))
        email = str(record["email"]).lower()
        if email in self.refused:
            return f"the testbed refuses {email}"
        list_id = record.get("list")
        if list_id is not None and list_id not in self.lists:
            return f"the testbed has no list {list_id}"
        stored = self.contacts.setdefault(email, {"email": record["email"]})
        stored.update(record.get("fields") or {})
        stored.setdefault("custom", {}).update(record.get("custom") or {})
        if list_id is not None and email not in self.lists[list_id].members:
            self.lists[list_id].members.append(email)
        return None

    def forget(self, email: str) -> bool:
        key = email.lower()
        for item in self.lists.values():
            if key in item.members:
                item.members.remove(key)
        return self.contacts.pop(key, None) is not None
