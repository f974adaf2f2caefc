"""The destination types a connection can have, as the forms, the CLI and the API offer them:
everything comes from the registry (:mod:`segsync.destinations.registry`), nothing names a type.

A type's :class:`~segsync.destinations.capabilities.Capabilities` carry what a form shows: its
display name and description (the type chooser), its settings (the fields) and its data-privacy
statement (agreed to at Connect).
"""

from __future__ import annotations

from segsync.destinations.capabilities import Capabilities, ConnectionSetting
from segsync.destinations.registry import (
    capabilities,
    default_type,
    destination_types,
    listed_capabilities,
)

ConnectionType = Capabilities
"""A destination type as the forms see it: its declared capabilities."""

__all__ = [
    "Capabilities",
    "ConnectionSetting",
    "ConnectionType",
    "connection_type",
    "connection_types",
    "consent_statement",
    "listed_type_names",
    "resolve_type",
]


def connection_types() -> list[ConnectionType]:
    """The types users may choose (the type chooser), by display name."""
    return listed_capabilities()


def listed_type_names() -> list[str]:
    """The names of the types users may choose, sorted (for help texts)."""
    return destination_types(listed_only=True)


def connection_type(type_name: str) -> ConnectionType:
    """The registered type ``type_name`` (any case); ``InputError`` naming the known types."""
    return capabilities(type_name)


def resolve_type(type_name: str | None) -> ConnectionType:
    """``type_name``'s capabilities; when it is left out, the default type's (Autopilot:
    :func:`~segsync.destinations.registry.default_type`)."""
    if type_name is not None and type_name.strip():
        return connection_type(type_name)
    return connection_type(default_type())


def consent_statement(type_name: str | None = None) -> str:
    """The data-privacy statement agreed to when a connection of this type is saved (C1, C8)."""
    return resolve_type(type_name).consent_statement
