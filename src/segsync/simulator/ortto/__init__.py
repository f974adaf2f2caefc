"""A local stand-in for the Ortto API (``segsync simulator --api ortto``): the simulator's
shared machinery over Ortto's people, audiences and subscriptions (docs/ortto-api.md)."""

from __future__ import annotations

from segsync.simulator.ortto.app import OrttoSimulator

__all__ = ["OrttoSimulator"]
