"""Connections to destinations: add, edit, test, remove (``manage``); what a user typed, checked
(``validation``); the key check (``checks``, ``probe``); read models (``views``); and what a
run needs from a connection at run time (``runtime``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.connections.manage import (
    CONSENT_STATEMENT,
    ConnectionDetails,
    add_connection,
    connection_config,
    edit_connection,
    export_actor,
    flag_connection,
    list_connections,
    remove_connection,
    show_connection,
    test_connection,
    usable_connections,
)

__all__ = [
    "CONSENT_STATEMENT",
    "ConnectionDetails",
    "add_connection",
    "connection_config",
    "edit_connection",
    "export_actor",
    "flag_connection",
    "list_connections",
    "remove_connection",
    "show_connection",
    "test_connection",
    "usable_connections",
]
