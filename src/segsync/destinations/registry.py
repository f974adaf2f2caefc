"""Which destination types exist: one line each in ``_TYPES`` (docs/destinations.md); the
first listed one is the default type.

Everything that offers or checks a connection type (the type chooser and forms of the web UI,
``segsync connections add TYPE``, the API) asks this module, never a type by name.
"""

from __future__ import annotations

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import ConnectionConfig, Destination
from segsync.destinations.capabilities import Capabilities
from segsync.destinations.ortto import OrttoDestination
from segsync.destinations.testbed import TestbedDestination
from segsync.errors import InputError

_TYPES: dict[str, type[Destination]] = {
    AutopilotDestination.capabilities.name: AutopilotDestination,
    OrttoDestination.capabilities.name: OrttoDestination,
    TestbedDestination.capabilities.name: TestbedDestination,
}


def destination_types(*, listed_only: bool = False) -> list[str]:
    """The registered type names, sorted (``["autopilot"]``); ``listed_only`` leaves out the
    types hidden from users (``Capabilities.listed`` False)."""
    return sorted(
        name for name, cls in _TYPES.items() if cls.capabilities.listed or not listed_only
    )


def default_type() -> str:
    """The type a connection has when none is named: the first listed line of ``_TYPES``
    (Autopilot; new types go below it)."""
    return next(name for name, cls in _TYPES.items() if cls.capabilities.listed)


def destination_class(type_name: str) -> type[Destination]:
    """The class of ``type_name``; ``InputError`` naming the known (listed) types otherwise."""
    try:
        return _TYPES[type_name.strip().lower()]
    except KeyError:
        known = ", ".join(destination_types(listed_only=True))
        raise InputError(
            f"unknown destination type {type_name!r}; the known types are: {known}"
        ) from None


def capabilities(type_name: str) -> Capabilities:
    """What the type declares (batch size, catalogue, settings...) without connecting."""
    return destination_class(type_name).capabilities


def listed_capabilities() -> list[Capabilities]:
    """The capabilities of every type users may choose, by display name."""
    found = [capabilities(name) for name in destination_types(listed_only=True)]
    return sorted(found, key=lambda caps: caps.display_name.casefold())


def create_destination(type_name: str, config: ConnectionConfig) -> Destination:
    """A new destination instance for one connection; use it as an async context manager."""
    return destination_class(type_name)(config)
