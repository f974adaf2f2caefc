"""Which destination types exist. Adding one: a package under ``segsync.destinations`` with a
:class:`~segsync.destinations.base.Destination` subclass, and one entry in ``_TYPES``."""

from __future__ import annotations

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import Capabilities, ConnectionConfig, Destination
from segsync.errors import InputError

_TYPES: dict[str, type[Destination]] = {
    AutopilotDestination.capabilities.name: AutopilotDestination,
}


def destination_types() -> list[str]:
    """The registered type names, sorted (``["autopilot"]``)."""
    return sorted(_TYPES)


def destination_class(type_name: str) -> type[Destination]:
    try:
        return _TYPES[type_name]
    except KeyError:
        known = ", ".join(destination_types())
        raise InputError(
            f"unknown destination type {type_name!r}; the known types are: {known}"
        ) from None


def capabilities(type_name: str) -> Capabilities:
    """What the type declares (batch size, default rate limit) without connecting."""
    return destination_class(type_name).capabilities


def create_destination(type_name: str, config: ConnectionConfig) -> Destination:
    """A new destination instance for one connection; use it as an async context manager."""
    cls = destination_class(type_name)
    return cls(config)  # type: ignore[call-arg]
