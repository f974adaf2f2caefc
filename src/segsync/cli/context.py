"""Opening the service layer from a CLI command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from segsync.cli.output import state

if TYPE_CHECKING:
    from segsync.services.context import ServiceContext


@contextmanager
def service_context(ctx: typer.Context) -> Iterator[ServiceContext]:
    """A :class:`ServiceContext` for the global options of this invocation, closed after.

    It acts as the user named by ``--as EMAIL`` (an unknown email is an ``InputError``), or as
    the local administrator without it.
    """
    from segsync.services.context import open_context

    cli_state = state(ctx)
    with open_context(cli_state.settings) as services:
        if cli_state.as_user is not None:
            from segsync.services.users import resolve_actor

            services.actor = resolve_actor(services, cli_state.as_user)
        yield services
