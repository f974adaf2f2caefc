"""Testbed as a :class:`~segsync.destinations.base.Destination`: every call is one "request" to
the in-process account at the connection's base URL (:mod:`segsync.destinations.testbed.fake`),
paced by the shared token bucket like any real API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from segsync.destinations.base import (
    AccountInfo,
    BatchResult,
    ConnectionConfig,
    Destination,
    ListMember,
    RecordOutcome,
    UpsertItem,
    first_titled,
)
from segsync.destinations.capabilities import Capabilities, consent_statement, core_settings
from segsync.destinations.pacing import TokenBucket
from segsync.destinations.testbed.fake import TestbedAccount, find_account
from segsync.domain.fields import CustomKeys, FieldCatalogue, ReservedName, StandardField
from segsync.errors import (
    AuthenticationFailed,
    InputError,
    NotFound,
    RetriableError,
    UnknownList,
)

DEFAULT_BASE_URL = "https://testbed.invalid/default"

TESTBED_FIELDS = FieldCatalogue(
    destination="Testbed",
    email_key="email",
    first_name_key="first_name",
    standard=(StandardField("city", "City"), StandardField("visits", "Visits", "integer")),
    custom_types=("string", "integer", "boolean"),
    custom_keys=CustomKeys(template="x_{type}_{name}", space="_", max_name=40),
    reserved=(ReservedName("id", "{name} is the testbed's own record id and cannot be mapped"),),
)
"""A small catalogue unlike Autopilot's: lower-case keys, no last name, fewer custom types."""


def record_json(item: UpsertItem) -> dict[str, Any]:
    """The one serializer of ``upsert_batch`` and ``preview``."""
    record: dict[str, Any] = {"email": item.email, "fields": dict(item.fields)}
    if item.custom:
        record["custom"] = dict(item.custom)
    if item.list_id is not None:
        record["list"] = item.list_id
    return record


class TestbedDestination(Destination):
    """The testbed's client."""

    __test__ = False  # not a pytest test class

    capabilities: ClassVar[Capabilities] = Capabilities(
        name="testbed",
        display_name="Testbed",
        description="An in-process stand-in for a marketing API, for segsync's own tests.",
        consent_statement=consent_statement("Testbed"),
        max_batch_size=25,
        default_rate_limit=50.0,
        default_base_url=DEFAULT_BASE_URL,
        catalogue=TESTBED_FIELDS,
        settings=core_settings(
            key_help="The key the testbed account was opened with.",
            reference_example="env:TESTBED_KEY",
            default_base_url=DEFAULT_BASE_URL,
            default_rate_limit=50.0,
        ),
        listed=False,
    )

    def __init__(self, config: ConnectionConfig) -> None:
        if not config.api_key.strip():
            raise InputError("the Testbed API key is empty; enter the key of the connection")
        self.config = config
        self.bucket = TokenBucket.for_connection(config)
        self._requests = 0

    async def _account(self) -> TestbedAccount:
        """One request: paced, counted, and answered by the account at the base URL."""
        await self.bucket.acquire()
        self.bucket.answered()  # the account is in this process: answered as soon as sent
        self._requests += 1
        account = find_account(self.config.base_url)
        if account is None:
            raise RetriableError(
                f"could not reach Testbed at {self.config.base_url}: no account is open there"
            )
        if account.api_key != self.config.api_key:
            raise AuthenticationFailed(
                "the Testbed API key was rejected; edit the connection and press Connect"
            )
        return account

    @property
    def requests_made(self) -> int:
        return self._requests

    @property
    def throttled(self) -> int:
        return 0

    async def aclose(self) -> None:
        return None

    async def check_credentials(self) -> AccountInfo:
        account = await self._account()
        return AccountInfo(instance_id=account.base_url, raw={"base_url": account.base_url})

    async def ensure_list(self, title: str, *, known: Mapping[str, str] | None = None) -> str:
        if not title.strip():
            raise InputError("a list title cannot be empty")
        if known is not None and (list_id := first_titled(known, title)) is not None:
            return list_id  # no request
        account = await self._account()
        found = account.list_by_title(title) or account.create_list(title)
        return found.list_id

    async def existing_lists(self) -> dict[str, str]:
        account = await self._account()
        return {item.list_id: item.title for item in account.lists.values()}

    async def upsert_batch(self, items: Sequence[UpsertItem]) -> BatchResult:
        self.check_batch(items)
        if not items:
            return BatchResult([], 0)
        account = await self._account()
        gone = next(
            (i.list_id for i in items if i.list_id and i.list_id not in account.lists), None
        )
        if gone is not None:
            raise UnknownList(gone, f"Testbed has no list {gone}")
        outcomes = []
        for item in items:
            reason = account.receive(record_json(item))
            outcomes.append(RecordOutcome(item.email, reason is None, reason=reason))
        return BatchResult(outcomes, 1)

    @classmethod
    def preview(cls, item: UpsertItem) -> dict[str, Any]:
        return record_json(item)

    async def remove_membership(self, list_id: str, email: str) -> bool:
        account = await self._account()
        found = account.lists.get(list_id)
        if found is None or email.lower() not in found.members:
            return False
        found.members.remove(email.lower())
        return True

    async def list_members(self, list_id: str) -> AsyncIterator[ListMember]:
        account = await self._account()
        found = account.lists.get(list_id)
        if found is None:
            raise NotFound(f"Testbed has no list {list_id}")
        for email in list(found.members):
            yield ListMember(email, account.contacts.get(email, {}))

    async def forget(self, email: str) -> bool:
        account = await self._account()
        return account.forget(email)
