"""Testbed: an in-process stand-in for a marketing API, added the way every destination is (one
package, one registry line, one conformance test file; docs/destinations.md). segsync's own tests
use it to prove the seam; users never see it (``listed=False``)."""

from __future__ import annotations

from segsync.destinations.testbed.destination import TestbedDestination
from segsync.destinations.testbed.fake import TestbedAccount, close_account, open_account

__all__ = ["TestbedAccount", "TestbedDestination", "close_account", "open_account"]
