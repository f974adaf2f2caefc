"""What the connection use cases take: a new connection's settings (:class:`NewConnection`) and
the changes to one (:class:`ConnectionEdit`), typed, the same for the CLI, the web UI and the API.

In a :class:`ConnectionEdit` a field left at :data:`UNSET` keeps the setting as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from segsync.storage.repositories.changes import UNSET, Keep, or_unset

__all__ = ["UNSET", "ConnectionEdit", "NewConnection", "or_unset"]


@dataclass(frozen=True)
class NewConnection:
    """A connection to add. ``type`` is a registered destination type (``None``: the only type
    users may choose, when there is exactly one). Exactly one of ``api_key`` and
    ``secret_ref`` (``env:NAME`` / ``file:PATH``) must be given. ``base_url``, ``rate_limit``
    and ``contract_limit`` default to the type's; ``export_user_email`` to the acting
    administrator. ``settings`` are the type's own settings by name (presets such as
    ``{"region": "eu"}``, which fill in the base URL unless ``base_url`` is given)."""

    name: str
    type: str | None = None
    api_key: str | None = field(default=None, repr=False)
    secret_ref: str | None = None
    base_url: str | None = None
    rate_limit: float | None = None
    contract_limit: int | None = None
    share_with_contributors: bool = False
    export_user_email: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionEdit:
    """Changes to a connection; :data:`UNSET` leaves a setting as it is. A new ``api_key`` or
    ``secret_ref`` (not both) replaces the key; ``export_user_email="local-admin"`` makes the
    local administrator the export user. ``settings`` are the type's own settings (presets:
    ``{"region": "eu"}`` changes the base URL unless ``base_url`` is given)."""

    name: Keep[str] = UNSET
    api_key: Keep[str] = field(default=UNSET, repr=False)
    secret_ref: Keep[str] = UNSET
    base_url: Keep[str] = UNSET
    rate_limit: Keep[float] = UNSET
    contract_limit: Keep[int] = UNSET
    share_with_contributors: Keep[bool] = UNSET
    export_user_email: Keep[str] = UNSET
    settings: Mapping[str, str] = field(default_factory=dict)
