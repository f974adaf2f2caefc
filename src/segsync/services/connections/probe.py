"""Connect without saving (C2): the **Connect** button of the Add connection form.

The form checks the key in place before the administrator presses Save; saving
(:func:`segsync.services.connections.manage.add_connection`) checks it again, so a browser without
JavaScript loses nothing. Nothing is stored or audited here, and the key never appears in the
outcome's message.
"""

from __future__ import annotations

from collections.abc import Mapping

from segsync.domain.permissions import Action, require
from segsync.errors import FatalError, InputError
from segsync.services.connections.checks import HEALTH_SECRET_UNREADABLE, CheckOutcome, check_key
from segsync.services.connections.types import resolve_type
from segsync.services.connections.validation import (
    valid_api_key,
    valid_base_url,
    valid_rate_limit,
)
from segsync.services.context import ServiceContext
from segsync.services.privacy.secrets import resolve_secret_ref, validate_secret_ref

__all__ = ["CheckOutcome", "probe_connection"]


def probe_connection(
    ctx: ServiceContext,
    type_name: str | None,
    *,
    api_key: str | None = None,
    secret_ref: str | None = None,
    base_url: str | None = None,
    rate_limit: float | None = None,
    settings: Mapping[str, str] | None = None,
) -> CheckOutcome:
    """Check a key (or the key a secret reference points at) against the destination.

    Administrators only. ``InputError`` for input that cannot be checked (neither or both of
    key and reference, an invalid base URL or rate limit); every answer of the destination is
    a :class:`CheckOutcome` (``ok``, ``key_rejected``, ``unreachable``, ``secret_unreadable``,
    ``error``). ``type_name`` ``None``: the default type (Autopilot). ``settings``: the
    type's own settings (presets like ``{"region": "eu"}`` fill in the base URL when it is not
    given).
    """
    require(ctx.actor, Action.MANAGE_CONNECTIONS)
    caps = resolve_type(type_name)
    key = (api_key or "").strip()
    ref = (secret_ref or "").strip()
    if bool(key) == bool(ref):
        raise InputError(
            "give either the API key or a secret reference (env:NAME or file:PATH), exactly one"
        )
    preset = caps.apply_presets(settings or {}).get("base_url")
    url = valid_base_url(base_url or preset or caps.default_base_url, ctx.settings)
    rate = valid_rate_limit(rate_limit if rate_limit is not None else caps.default_rate_limit)
    if ref:
        try:
            key = resolve_secret_ref(validate_secret_ref(ref))
        except FatalError as err:
            return CheckOutcome(HEALTH_SECRET_UNREADABLE, err.message)
    else:
        key = valid_api_key(key)
    return check_key(caps.name, base_url=url, api_key=key, rate_limit=rate)
