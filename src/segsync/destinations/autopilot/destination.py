"""Autopilot as a :class:`~segsync.destinations.base.Destination`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from segsync.destinations.autopilot.bulk import upsert_isolating
from segsync.destinations.autopilot.client import DEFAULT_BASE_URL, AutopilotClient, unexpected
from segsync.destinations.autopilot.contact import contact_json
from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.destinations.base import (
    AccountInfo,
    BatchResult,
    ConnectionConfig,
    ListMember,
    UpsertItem,
    first_titled,
)
from segsync.destinations.capabilities import Capabilities, consent_statement, core_settings
from segsync.destinations.client_backed import ClientBackedDestination
from segsync.errors import FatalError, NotFound

CREDENTIALS_CHECK_ATTEMPTS = 3
"""Connect should answer within seconds: an unreachable service is reported, not waited out."""


class AutopilotDestination(ClientBackedDestination):
    """Autopilot's REST API v1 (see docs/autopilot-client.md)."""

    lists_in_one_request: ClassVar[bool] = True  # GET /lists
    capabilities: ClassVar[Capabilities] = Capabilities(
        name="autopilot",
        display_name="Autopilot",
        description="Email marketing automation: contacts and lists.",
        consent_statement=consent_statement("Autopilot"),
        max_batch_size=100,
        default_rate_limit=5.0,
        default_base_url=DEFAULT_BASE_URL,
        catalogue=AUTOPILOT_FIELDS,
        settings=core_settings(
            key_help="Find it in Autopilot under Settings > Autopilot API.",
            reference_example="env:AUTOPILOT_KEY or file:/run/secrets/autopilot",
            default_base_url=DEFAULT_BASE_URL,
            default_rate_limit=5.0,
        ),
    )

    def __init__(self, config: ConnectionConfig) -> None:
        self.client = AutopilotClient(config)

    async def check_credentials(self) -> AccountInfo:
        reply = await self.client.account(max_attempts=CREDENTIALS_CHECK_ATTEMPTS)
        data = reply.data
        if not reply.ok or not isinstance(data, dict) or not data.get("instanceId"):
            raise unexpected(reply, "the credentials check GET /account")
        return AccountInfo(instance_id=str(data["instanceId"]), raw=data)

    async def ensure_list(self, title: str, *, known: Mapping[str, str] | None = None) -> str:
        return await self._find_or_create(
            title,
            self.client.create_list,
            "list_id",
            lambda reply: unexpected(reply, "creating a list (POST /list)"),
            known,
        )

    async def _find_list(self, title: str) -> str | None:
        """The first list Autopilot lists with exactly this title."""
        return first_titled(await self.existing_lists(), title)

    async def existing_lists(self) -> dict[str, str]:
        """``GET /lists`` as ``{list_id: title}``, in the order Autopilot lists them."""
        reply = await self.client.lists()
        data = reply.data
        if not reply.ok or not isinstance(data, dict) or not isinstance(data.get("lists"), list):
            raise unexpected(reply, "listing lists (GET /lists)")
        found: dict[str, str] = {}
        for entry in data["lists"]:
            if isinstance(entry, dict) and entry.get("list_id"):
                found.setdefault(str(entry["list_id"]), str(entry.get("title") or ""))
        return found

    async def upsert_batch(self, items: Sequence[UpsertItem]) -> BatchResult:
        self.check_batch(items)
        return await upsert_isolating(self.client, items)

    @classmethod
    def preview(cls, item: UpsertItem) -> dict[str, Any]:
        return contact_json(item)

    # Not part of the Destination contract: used by the Autopilot tests and kept for tools.

    async def add_membership(self, list_id: str, email: str) -> bool:
        """Add an existing contact to the list; False if it was already there."""
        reply = await self.client.add_to_list(list_id, email)
        if reply.status == 404:
            raise NotFound(
                f"Autopilot has no list {list_id} or no contact {_mask(email)} to add to it"
            )
        if not reply.ok:
            raise unexpected(reply, "adding a list member")
        # After an ambiguous first try, "not modified" most likely means that try added it.
        return reply.ambiguous or not _not_modified(reply.data)

    async def remove_membership(self, list_id: str, email: str) -> bool:
        reply = await self.client.remove_from_list(list_id, email)
        if reply.status == 404:
            return reply.ambiguous
        if not reply.ok:
            raise unexpected(reply, "removing a list member")
        return reply.ambiguous or not _not_modified(reply.data)

    async def forget(self, email: str) -> bool:
        reply = await self.client.delete_contact(email)
        if reply.status == 404:
            return reply.ambiguous  # an earlier, timed-out try may have deleted it
        if not reply.ok:
            raise unexpected(reply, "deleting a contact")
        return True

    async def get_contact(self, email: str) -> dict[str, Any] | None:
        """The stored contact as Autopilot returns it, or None if there is none."""
        reply = await self.client.get_contact(email)
        if reply.status == 404:
            return None
        if not reply.ok or not isinstance(reply.data, dict):
            raise unexpected(reply, "reading a contact")
        return reply.data

    async def list_members(self, list_id: str) -> AsyncIterator[ListMember]:
        bookmark: str | None = None
        seen: set[str] = set()
        while True:
            reply = await self.client.list_contacts_page(list_id, bookmark)
            if reply.status == 404 and bookmark is None:
                raise NotFound(f"Autopilot has no list {list_id}")
            data = reply.data
            if not reply.ok or not isinstance(data, dict):
                raise unexpected(reply, "reading a list's members")
            for contact in data.get("contacts") or []:
                if isinstance(contact, dict):
                    yield ListMember(str(contact.get("Email") or ""), contact)
            bookmark = data.get("bookmark")
            if not bookmark:
                return
            if bookmark in seen:
                raise FatalError(
                    f"Autopilot returned the page bookmark {bookmark} twice while listing "
                    f"{list_id}; stopped to avoid looping"
                )
            seen.add(bookmark)


def _not_modified(data: Any) -> bool:
    return isinstance(data, dict) and data.get("not_modified") is True


def _mask(email: str) -> str:
    """``j***@example.org``: enough to recognise an address in a message, not to harvest it."""
    local, sep, domain = email.partition("@")
    return f"{local[:1]}***{sep}{domain}" if sep else "***"
