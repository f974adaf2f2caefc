"""Exports: create, edit, duplicate (``manage``); detach, attach, remove (``lifecycle``); their
typed inputs (``inputs``); their settings checked (``validation``); read models (``views`` for
the list, ``details`` for one export); what the web forms and API need (``forms``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.exports.details import ExportDetails, MappedField, SegmentLine, show_export
from segsync.services.exports.inputs import (
    UNSET,
    DataMatching,
    ExportEdit,
    ExportSettings,
    MappingLine,
    or_unset,
)
from segsync.services.exports.lifecycle import attach_export, detach_export, remove_export
from segsync.services.exports.manage import (
    ExportChange,
    create_export,
    duplicate_export,
    edit_export,
    export_id,
    get_export,
)
from segsync.services.exports.validation import schedule_from_options
from segsync.services.exports.views import NO_CONNECTION, SORT_COLUMNS, ExportRow, list_exports
from segsync.storage.repositories.exports import ExportRecord

__all__ = [
    "NO_CONNECTION",
    "SORT_COLUMNS",
    "UNSET",
    "DataMatching",
    "ExportChange",
    "ExportDetails",
    "ExportEdit",
    "ExportRecord",
    "ExportRow",
    "ExportSettings",
    "MappedField",
    "MappingLine",
    "SegmentLine",
    "attach_export",
    "create_export",
    "detach_export",
    "duplicate_export",
    "edit_export",
    "export_id",
    "get_export",
    "list_exports",
    "or_unset",
    "remove_export",
    "schedule_from_options",
    "show_export",
]
