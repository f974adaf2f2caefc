"""Ortto as a :class:`~segsync.destinations.base.Destination`: people, and one audience per
segment (docs/ortto-api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from segsync.destinations.base import (
    AccountInfo,
    BatchResult,
    ConnectionConfig,
    ListMember,
    UpsertItem,
    first_titled,
)
from segsync.destinations.capabilities import (
    Capabilities,
    ConnectionSetting,
    consent_statement,
    core_settings,
)
from segsync.destinations.client_backed import ClientBackedDestination
from segsync.destinations.ortto.client import (
    AUDIENCES_PAGE,
    DEFAULT_BASE_URL,
    PEOPLE_PAGE,
    REGION_BASE_URLS,
    OrttoClient,
    unexpected,
)
from segsync.destinations.ortto.fields import ORTTO_FIELDS
from segsync.destinations.ortto.merge import upsert_people
from segsync.destinations.ortto.person import sent_json
from segsync.errors import FatalError, NotFound

CREDENTIALS_CHECK_ATTEMPTS = 3
"""Connect should answer within seconds: an unreachable service is reported, not waited out."""
MEMBER_FIELDS = ["str::email", "str::first", "str::last"]


class OrttoDestination(ClientBackedDestination):
    """Ortto's API (``api.ap3api.com``, ``X-Api-Key``): people merged by email, audiences."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        name="ortto",
        display_name="Ortto",
        description="Autopilot's successor: people (contacts) and audiences.",
        consent_statement=consent_statement("Ortto"),
        max_batch_size=100,
        default_rate_limit=10.0,
        default_base_url=DEFAULT_BASE_URL,
        catalogue=ORTTO_FIELDS,
        settings=(
            *core_settings(
                key_help="A custom API key: in Ortto, Settings > Data sources > Custom API.",
                reference_example="env:ORTTO_KEY or file:/run/secrets/ortto",
                default_base_url=DEFAULT_BASE_URL,
                default_rate_limit=10.0,
            ),
            ConnectionSetting(
                "region",
                "Data region",
                "choice",
                help="eu or au for an instance in Europe or Australia",
                choices=tuple(REGION_BASE_URLS),
                sets="base_url",
                values=tuple(REGION_BASE_URLS.items()),
            ),
        ),
    )

    client: OrttoClient

    def __init__(self, config: ConnectionConfig) -> None:
        self.client = OrttoClient(config)

    async def check_credentials(self) -> AccountInfo:
        """One page of audiences: the key is taken or refused. Ortto's API does not say which
        account a key reaches, so the account is known by its region's host."""
        reply = await self.client.audiences_page(0, max_attempts=CREDENTIALS_CHECK_ATTEMPTS)
        if not reply.ok or not isinstance(reply.data, list):
            raise unexpected(reply, "the credentials check POST /audiences/get")
        host = urlsplit(self.client.config.base_url).hostname or self.client.config.base_url
        return AccountInfo(instance_id=f"ortto:{host}", raw={"audiences": len(reply.data)})

    async def ensure_list(self, title: str, *, known: Mapping[str, str] | None = None) -> str:
        """The audience named exactly ``title``, created if there is none."""
        return await self._find_or_create(
            title,
            self.client.create_audience,
            "id",
            lambda reply: unexpected(reply, "creating an audience (POST /audiences/create)"),
            known,
        )

    async def _find_list(self, title: str) -> str | None:
        """The first audience Ortto lists with exactly this name (searched by name)."""
        return first_titled(await self._audiences(search=title), title)

    async def existing_lists(self) -> dict[str, str]:
        """Every audience, ``{id: name}``: pages of 40, Ortto's largest."""
        return await self._audiences()

    async def _audiences(self, search: str | None = None) -> dict[str, str]:
        found: dict[str, str] = {}
        offset = 0
        while True:
            reply = await self.client.audiences_page(offset, search=search)
            if not reply.ok or not isinstance(reply.data, list):
                raise unexpected(reply, "listing audiences (POST /audiences/get)")
            for entry in reply.data:
                if isinstance(entry, dict) and entry.get("id"):
                    found.setdefault(str(entry["id"]), str(entry.get("name") or ""))
            if len(reply.data) < AUDIENCES_PAGE:
                return found
            offset += len(reply.data)

    async def upsert_batch(self, items: Sequence[UpsertItem]) -> BatchResult:
        self.check_batch(items)
        return await upsert_people(self.client, items)

    @classmethod
    def preview(cls, item: UpsertItem) -> dict[str, Any]:
        return sent_json(item)

    async def remove_membership(self, list_id: str, email: str) -> bool:
        """Unsubscribe the person from the audience (they stay a person in Ortto)."""
        reply = await self.client.subscribe(list_id, [email], False)
        if reply.status == 404:
            return False
        answers = reply.data.get("people") if isinstance(reply.data, dict) else None
        if not reply.ok or not isinstance(answers, list):
            raise unexpected(reply, "unsubscribing from an audience (PUT /audience/subscribe)")
        status = answers[0].get("status") if answers and isinstance(answers[0], dict) else None
        # After an ambiguous first try, "unchanged" most likely means that try did it.
        return status == "unsubscribed" or (reply.ambiguous and status == "unchanged")

    async def list_members(self, list_id: str) -> AsyncIterator[ListMember]:
        """The audience's email subscribers, 500 a page."""
        offset = 0
        while True:
            body = {
                "audience_id": list_id,
                "audience_filter": "email-subscribers",
                "fields": MEMBER_FIELDS,
                "limit": PEOPLE_PAGE,
                "offset": offset,
            }
            reply = await self.client.people_page(body)
            if reply.status == 404 and offset == 0:
                raise NotFound(f"Ortto has no audience {list_id}")
            data = reply.data
            if not reply.ok or not isinstance(data, dict):
                raise unexpected(reply, "reading an audience's members (POST /person/get)")
            contacts = data.get("contacts") or []
            for contact in contacts:
                if isinstance(contact, dict):
                    fields = contact.get("fields") or {}
                    yield ListMember(str(fields.get("str::email") or ""), contact)
            if not data.get("has_more"):
                return
            following = data.get("next_offset")
            if not isinstance(following, int) or following <= offset:
                raise FatalError(
                    f"Ortto's pages of audience {list_id} did not move on from offset {offset}; "
                    "stopped to avoid looping"
                )
            offset = following

    async def forget(self, email: str) -> bool:
        """Find the person by email, archive them, then delete them (Ortto deletes only
        archived people): three requests; False when there is no such person."""
        body = {
            "filter": {"$str::is": {"field_id": "str::email", "value": email}},
            "fields": ["str::email"],
            "limit": 1,
        }
        reply = await self.client.people_page(body)
        contacts = reply.data.get("contacts") if isinstance(reply.data, dict) else None
        if not reply.ok or not isinstance(contacts, list):
            raise unexpected(reply, "finding a person (POST /person/get)")
        ids = [str(c["id"]) for c in contacts if isinstance(c, dict) and c.get("id")]
        if not ids:
            return False
        for step, call in (("archiving", self.client.archive), ("deleting", self.client.delete)):
            done = await call(ids)
            if not done.ok:
                raise unexpected(done, f"{step} a person")
        return True
