"""Failure notices: recorded in the app (``manage``) and delivered by email or webhook
(``channels``).

The edges (``web/``, ``cli/``) import the family; modules inside ``services/`` import the module
they need, never a family, so no import goes in a circle.
"""

from __future__ import annotations

from segsync.services.notifications.manage import (
    MAX_DELIVERY_ATTEMPTS,
    NotificationRecord,
    list_notifications,
    mark_read,
    on_run_finished,
    redeliver_pending,
)

__all__ = [
    "MAX_DELIVERY_ATTEMPTS",
    "NotificationRecord",
    "list_notifications",
    "mark_read",
    "on_run_finished",
    "redeliver_pending",
]
