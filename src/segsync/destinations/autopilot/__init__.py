"""The Autopilot destination: REST API v1 client, pacing, retries and per-record outcomes."""

from __future__ import annotations

from segsync.destinations.autopilot.client import DEFAULT_BASE_URL, AutopilotClient
from segsync.destinations.autopilot.destination import AutopilotDestination

__all__ = ["DEFAULT_BASE_URL", "AutopilotClient", "AutopilotDestination"]
