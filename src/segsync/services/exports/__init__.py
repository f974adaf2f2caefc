"""Exports: create, edit, duplicate, detach, remove (``manage``); their settings checked
(``validation``); read models (``views``); what the web forms and API need (``forms``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.exports.manage import (
    NO_CONNECTION,
    SORT_COLUMNS,
    ExportChange,
    ExportDetails,
    attach_export,
    create_export,
    detach_export,
    duplicate_export,
    edit_export,
    get_export,
    list_exports,
    remove_export,
    schedule_from_options,
    show_export,
)

__all__ = [
    "NO_CONNECTION",
    "SORT_COLUMNS",
    "ExportChange",
    "ExportDetails",
    "attach_export",
    "create_export",
    "detach_export",
    "duplicate_export",
    "edit_export",
    "get_export",
    "list_exports",
    "remove_export",
    "schedule_from_options",
    "show_export",
]
