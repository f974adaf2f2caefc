"""`segsync simulator`: help, and options mapped onto SimulatorConfig (no server started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from segsync.cli import app
from segsync.cli.simulator import config_from_options
from segsync.errors import InputError


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["simulator", "--help"])
    assert result.exit_code == 0
    for option in (
        "--api-key",
        "--rate-limit",
        "--latency-ms",
        "--state-file",
        "--port",
        "--throttle-next",
        "--hold-after-writes",
    ):
        assert option in result.output


def test_options_map_onto_the_config(tmp_path: Path) -> None:
    config = config_from_options(
        api_keys=["a", "b"],
        rate_limit=0,
        latency_ms=25,
        state_file=tmp_path / "s.json",
        retry_after=2,
        reject_emails="@bad$",
        fail_next=3,
        timeout_next_writes=1,
        throttle_next=4,
        hold_after_writes=6,
        revoked_keys=["b"],
        seed=9,
    )
    assert config.api_keys == ["a", "b"]
    assert (config.rate_limit, config.latency_ms, config.retry_after) == (0, 25, 2)
    assert config.state_file == tmp_path / "s.json"
    assert config.reject_email_pattern == "@bad$"
    assert (config.fail_next, config.timeout_next_writes) == (3, 1)
    assert (config.throttle_next, config.hold_after_writes) == (4, 6)
    assert (config.revoked_keys, config.seed) == (["b"], 9)


def test_defaults_give_the_simulator_key_and_5_rps() -> None:
    config = config_from_options()
    assert config.api_keys == ["simulator-key"]
    assert config.rate_limit == 5


def test_invalid_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="rate_limit"):
        config_from_options(rate_limit=-2)


def test_invalid_option_exits_2_before_serving() -> None:
    result = CliRunner().invoke(app, ["simulator", "--reject-emails", "(", "--port", "1"])
    assert result.exit_code == 2
    assert "reject_email_pattern" in result.output
