"""The Ortto destination: Autopilot's successor, over its people and audiences API
(docs/ortto-api.md)."""

from __future__ import annotations

from segsync.destinations.ortto.client import DEFAULT_BASE_URL, OrttoClient
from segsync.destinations.ortto.destination import OrttoDestination

__all__ = ["DEFAULT_BASE_URL", "OrttoClient", "OrttoDestination"]
