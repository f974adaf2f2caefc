"""Segments: create, update, delete, refresh (``manage``); the web builder's helpers
(``builder``); counts, previews and member downloads (``members``); snapshots at refresh
(``refresh``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.segments.manage import (
    create_segment,
    delete_segment,
    list_segments,
    refresh_segments,
    segment_to_dict,
    show_segment,
    update_segment,
)

__all__ = [
    "create_segment",
    "delete_segment",
    "list_segments",
    "refresh_segments",
    "segment_to_dict",
    "show_segment",
    "update_segment",
]
