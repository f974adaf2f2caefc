"""Connections to destinations: add, edit, test, remove (``manage``); their typed inputs
(``inputs``); the destination types they can have (``types``); what a user typed, checked
(``validation``); the key check (``checks``, ``probe``); read models (``views``); and what a
run needs from a connection at run time (``runtime``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.connections.inputs import UNSET, ConnectionEdit, NewConnection, or_unset
from segsync.services.connections.manage import (
    ConnectionDetails,
    add_connection,
    connection_config,
    connection_id,
    edit_connection,
    export_actor,
    flag_connection,
    list_connections,
    remove_connection,
    show_connection,
    test_connection,
    usable_connections,
)
from segsync.services.connections.types import (
    ConnectionType,
    connection_type,
    connection_types,
    consent_statement,
    listed_type_names,
    resolve_type,
)

__all__ = [
    "UNSET",
    "ConnectionDetails",
    "ConnectionEdit",
    "ConnectionType",
    "NewConnection",
    "add_connection",
    "connection_config",
    "connection_id",
    "connection_type",
    "connection_types",
    "consent_statement",
    "edit_connection",
    "export_actor",
    "flag_connection",
    "list_connections",
    "listed_type_names",
    "or_unset",
    "remove_connection",
    "resolve_type",
    "show_connection",
    "test_connection",
    "usable_connections",
]
