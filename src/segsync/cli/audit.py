"""``segsync audit``: read or export the audit trail (administrators only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, WideOption, console, print_json, print_table, wants_json

if TYPE_CHECKING:
    from segsync.services.privacy import audit as audit_service
else:
    audit_service = lazy_module("segsync.services.privacy.audit")


def audit_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="T",
            help="Only events from T on: 30m, 24h, 7d, 2w, or an ISO date or date-time.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Only the newest N events.")
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option("--jsonl", metavar="FILE", help="Write every event as JSON lines to FILE."),
    ] = None,
    wide: WideOption = False,
    json_output: JsonOption = False,
) -> None:
    """Who changed which connection, user or export, every consent, and what each run sent."""
    with service_context(ctx) as services:
        start = audit_service.parse_since(since, services.now()) if since else None
        if jsonl is not None:
            count = audit_service.export_jsonl(services, jsonl, since=start)
            console.print(f"Wrote {count} audit event(s) to {jsonl}.", highlight=False)
            return
        events = audit_service.list_events(services, since=start, limit=limit)
    if wants_json(ctx, json_output):
        print_json([event.to_dict() for event in events])
        return
    if not events:
        console.print("No audit events.")
        return
    rows = [[e.at.strftime("%Y-%m-%d %H:%M:%S"), e.action, e.summary, e.actor] for e in events]
    print_table("Audit trail (UTC)", ["at", "action", "summary", "actor"], rows, wide=wide)
