"""The outbound allow-list (issue 14 §7): https anywhere and plain http only to loopback by
default; ``SEGSYNC_OUTBOUND_ALLOW`` narrows or widens it. Checked when a base URL is saved or
checked, and again before every run (a list changed since the save stops the run)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from segsync.domain.outbound import entry_problem, outbound_problem
from segsync.errors import FatalError, InputError
from segsync.services import connections
from segsync.services.connections.probe import probe_connection
from segsync.services.connections.runtime import connection_config
from segsync.services.context import ServiceContext
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread

KEY = "sk-outbound-5e3a91c07b"


@pytest.mark.parametrize(
    ("url", "allow", "allowed"),
    [
        ("https://api2.autopilothq.com/v1", [], True),
        ("http://api2.autopilothq.com/v1", [], False),
        ("http://127.0.0.1:8000/v1", [], True),
        ("http://127.9.9.9/v1", [], True),
        ("http://[::1]:8000/v1", [], True),
        ("http://localhost:8000/v1", [], True),
        ("http://10.0.0.5/v1", [], False),
        ("http://169.254.169.254/latest", [], False),
        ("https://api.example.com/v1", ["https://*.example.com"], True),
        ("https://example.com/v1", ["https://*.example.com"], False),
        ("https://evil-example.com/v1", ["https://*.example.com"], False),
        ("http://intranet.example.com:8080/v1", ["http://intranet.example.com:8080"], True),
        ("http://intranet.example.com:8081/v1", ["http://intranet.example.com:8080"], False),
        ("http://127.0.0.1:8000/v1", ["https://*"], False),
        ("http://127.0.0.1:8000/v1", ["https://*", "loopback"], True),
    ],
)
def test_the_allow_list(url: str, allow: list[str], allowed: bool) -> None:
    assert (outbound_problem(url, allow, what="base URL") is None) is allowed


def test_a_bad_entry_is_named() -> None:
    assert entry_problem("ftp://x") is not None
    assert entry_problem("https://x.example.com/path") is not None
    assert entry_problem("loopback") is None


def test_the_setting_reads_a_comma_separated_list() -> None:
    settings = Settings(_env_file=None, outbound_allow="https://*, loopback")  # type: ignore[call-arg]
    assert settings.outbound_allow == ["https://*", "loopback"]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(Simulator(SimulatorConfig(api_keys=[KEY], rate_limit=0))) as running:
        yield running


def test_a_base_url_outside_the_list_is_refused_before_the_key_is_sent(
    service_context: ServiceContext, sim: RunningSimulator
) -> None:
    with pytest.raises(InputError, match=r"plain http to '10\.1\.2\.3'"):
        probe_connection(service_context, None, api_key=KEY, base_url="http://10.1.2.3:9/v1")
    narrowed = dataclasses.replace(
        service_context,
        settings=service_context.settings.model_copy(update={"outbound_allow": ["https://*"]}),
    )
    new = connections.NewConnection("Sim", api_key=KEY, base_url=sim.base_url)
    with pytest.raises(InputError, match="not in the outbound allow-list"):
        connections.add_connection(narrowed, new, agree=True)
    assert connections.list_connections(service_context) == []


def test_a_saved_connection_the_list_no_longer_allows_stops_its_runs(
    service_context: ServiceContext, sim: RunningSimulator
) -> None:
    new = connections.NewConnection("Sim", api_key=KEY, base_url=sim.base_url)
    saved = connections.add_connection(service_context, new, agree=True)
    assert connection_config(service_context, saved.id)[1].base_url == sim.base_url
    narrowed = dataclasses.replace(
        service_context,
        settings=service_context.settings.model_copy(update={"outbound_allow": ["https://*"]}),
    )
    with pytest.raises(FatalError, match="not in the outbound allow-list"):
        connection_config(narrowed, saved.id)
