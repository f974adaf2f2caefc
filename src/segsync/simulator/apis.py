"""Which simulator a configuration asks for: Autopilot's (the default) or Ortto's."""

from __future__ import annotations

from segsync.simulator.app import Simulator
from segsync.simulator.config import SimulatorConfig


def create_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """A simulator of ``config.api`` built from ``config``."""
    if config is not None and config.api == "ortto":
        from segsync.simulator.ortto import OrttoSimulator

        return OrttoSimulator(config)
    return Simulator(config)
