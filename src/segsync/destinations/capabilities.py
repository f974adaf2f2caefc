"""What a destination type declares about itself, before any connection exists: its names and
description, the data-privacy statement agreed to at Connect, its batch size and pacing
defaults, its field catalogue and the settings the connection forms ask for.

Everything here is data: the web forms, the CLI and the API render and check connections of any
type from it, so a new destination adds no form, no option and no word to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from segsync.domain.fields import FieldCatalogue
from segsync.errors import InputError

SettingKind = Literal["secret", "url", "rate", "whole", "text", "choice"]
"""How a setting is entered and checked: ``secret`` (a key, stored encrypted or as a reference),
``url`` (http or https), ``rate`` (requests per second, above 0), ``whole`` (a whole number from
1), ``text`` (one line), ``choice`` (one of ``choices``)."""

API_KEY = "api_key"
BASE_URL = "base_url"
RATE_LIMIT = "rate_limit"
CONTRACT_LIMIT = "contract_limit"
CORE_SETTINGS = (API_KEY, BASE_URL, RATE_LIMIT, CONTRACT_LIMIT)
"""The settings every connection has (a column each). Others a type declares are its own."""

DEFAULT_CONTRACT_LIMIT = 100_000
"""Profiles a connection may receive unless its administrator says otherwise."""


@dataclass(frozen=True)
class ConnectionSetting:
    """One setting the connection forms ask for.

    ``name`` is how the CLI (``--base-url`` for ``base_url``), the API (a JSON key) and the form
    (a field name) call it; ``label`` and ``help`` are what people read; ``default`` is used when
    a new connection leaves it out (``None``: nothing); ``example`` is what an empty field shows
    (for a secret: an example of a secret reference); ``secret`` values are never shown again;
    ``required`` ones must be given when a connection is added; ``advanced`` ones sit under
    "Advanced settings"; ``choices`` are the values of a ``choice`` (a data region, say).

    A setting of a type's own is a **preset**: a ``choice`` that is not stored but fills in
    the core setting named by ``sets`` with the value ``values`` gives the choice (Ortto's
    ``region`` picks its base URL: ``values=(("eu", "https://api.eu.ap3api.com/v1"), ...)``).
    """

    name: str
    label: str
    kind: SettingKind
    default: str | float | int | None = None
    help: str = ""
    example: str = ""
    secret: bool = False
    required: bool = False
    advanced: bool = False
    choices: tuple[str, ...] = ()
    sets: str | None = None
    values: tuple[tuple[str, str], ...] = ()

    def value_of(self, choice: str) -> str | None:
        """The value a preset's ``choice`` fills in (None: not a choice of this setting)."""
        return dict(self.values).get(choice.strip().lower())

    def choice_of(self, value: str) -> str | None:
        """The preset's choice that fills in ``value`` (the current one, on an edit form)."""
        return next((choice for choice, filled in self.values if filled == value), None)


def core_settings(
    *,
    key_help: str,
    reference_example: str,
    default_base_url: str,
    default_rate_limit: float,
) -> tuple[ConnectionSetting, ...]:
    """The four settings every destination has, with its own help text and defaults: the API
    key (``key_help`` says where to find it; a secret reference such as ``reference_example``
    may stand in for it), the base URL, the rate limit and the contract limit."""
    return (
        ConnectionSetting(
            API_KEY,
            "API key",
            "secret",
            help=key_help,
            example=reference_example,
            secret=True,
            required=True,
        ),
        ConnectionSetting(
            BASE_URL,
            "Base URL",
            "url",
            default=default_base_url,
            example=default_base_url,
            advanced=True,
        ),
        ConnectionSetting(
            RATE_LIMIT,
            "Rate limit",
            "rate",
            default=default_rate_limit,
            help="requests per second",
            example=f"{default_rate_limit:g}",
            advanced=True,
        ),
        ConnectionSetting(
            CONTRACT_LIMIT,
            "Contract limit",
            "whole",
            default=DEFAULT_CONTRACT_LIMIT,
            help="profiles",
            example=f"{DEFAULT_CONTRACT_LIMIT:,}",
            advanced=True,
        ),
    )


def consent_statement(display_name: str) -> str:
    """segsync's data-privacy statement for a destination called ``display_name``: what an
    administrator agrees to when a connection to it is saved (P1, C1, C8)."""
    return (
        "I understand that saving this connection lets segsync send data out of this system to "
        f"{display_name}, a third-party service outside our boundary, and that this data may be "
        "personal data about our customers (email addresses, names and any other attribute "
        "mapped in an export). We, the customer operating segsync, are responsible for making "
        f"sure that {display_name} meets our legal and contractual obligations for that data, "
        "such as a data-processing agreement and a lawful basis for sending it."
    )


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a destination type declares about itself.

    ``name`` is the type's key (``"autopilot"``: stored on connections, typed on the CLI, in
    URLs); ``display_name`` and ``description`` are shown when an administrator chooses a type;
    ``consent_statement`` is agreed to at Connect and must name the destination;
    ``max_batch_size`` is the most records one :meth:`Destination.upsert_batch` accepts (the
    planner packs batches of that size); ``default_rate_limit`` is in requests per second;
    ``catalogue`` is what an export may map; ``settings`` are what its connection forms ask for
    (:func:`core_settings` and any of its own); ``listed`` False hides the type from the type
    chooser and the help texts (a test destination), though it still works when named.
    """

    name: str
    display_name: str
    description: str
    consent_statement: str
    max_batch_size: int
    default_rate_limit: float
    default_base_url: str
    catalogue: FieldCatalogue
    settings: tuple[ConnectionSetting, ...]
    listed: bool = True

    def setting(self, name: str) -> ConnectionSetting | None:
        return next((item for item in self.settings if item.name == name), None)

    def own_settings(self) -> tuple[ConnectionSetting, ...]:
        """The settings beyond the four every connection has (presets: see
        :class:`ConnectionSetting`)."""
        return tuple(item for item in self.settings if item.name not in CORE_SETTINGS)

    def apply_presets(self, chosen: Mapping[str, str]) -> dict[str, str]:
        """The core settings that the presets ``chosen`` (``{"region": "eu"}``) fill in
        (``{"base_url": ...}``); ``InputError`` naming the setting for an unknown setting or
        choice."""
        own = {item.name: item for item in self.own_settings()}
        filled: dict[str, str] = {}
        for name, choice in chosen.items():
            setting = own.get(name)
            if setting is None or setting.sets is None:
                known = ", ".join(sorted(own)) or "none"
                raise InputError(
                    f"{self.display_name} connections have no setting {name!r} (theirs: {known})"
                )
            value = setting.value_of(choice)
            if value is None:
                raise InputError(
                    f"{setting.label.lower()} {choice!r} is not one of {', '.join(setting.choices)}"
                )
            filled[setting.sets] = value
        return filled
