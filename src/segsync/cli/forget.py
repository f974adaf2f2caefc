"""``segsync forget EMAIL``, ``segsync erasures list|retry`` (P4) and
``segsync notifications list|read`` (T4). Administrators only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import (
    EXIT_FAILED,
    JsonOption,
    WideOption,
    console,
    print_json,
    print_table,
    wants_json,
)
from segsync.errors import InputError

if TYPE_CHECKING:
    from segsync.services import notifications as notification_service
    from segsync.services.privacy import erasure as erasure_service
else:
    notification_service = lazy_module("segsync.services.notifications")
    erasure_service = lazy_module("segsync.services.privacy.erasure")

erasures_app = typer.Typer(
    name="erasures",
    help="Erasures of people (segsync forget): list them, retry the pending ones.",
    no_args_is_help=True,
)
notifications_app = typer.Typer(
    name="notifications",
    help="Notices to administrators: exports that failed for good, and recovered.",
    no_args_is_help=True,
)


def forget_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    json_output: JsonOption = False,
) -> None:
    """Delete a person from every Autopilot connection they were exported to, and from the sync
    state. A destination that cannot be reached keeps the erasure pending (exit code 1); it is
    retried by `segsync erasures retry` and by the scheduler of `segsync serve`."""
    with service_context(ctx) as services:
        report = erasure_service.forget(services, email)
    if wants_json(ctx, json_output):
        print_json(report.to_dict())
    else:
        if report.outcomes:
            rows = [
                [
                    o.connection,
                    o.status,
                    {True: "deleted", False: "not there", None: ""}[o.deleted],
                    o.error or "",
                ]
                for o in report.outcomes
            ]
            print_table(
                f"Erasure of {report.email}", ["connection", "status", "contact", "error"], rows
            )
        console.print(report.message)
    if report.pending:
        raise typer.Exit(EXIT_FAILED)


@erasures_app.command("list")
def list_command(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only pending erasures.")] = False,
    wide: WideOption = False,
    json_output: JsonOption = False,
) -> None:
    """Erasures, newest first. Emails are masked; a done erasure keeps only a SHA-256 digest."""
    with service_context(ctx) as services:
        records = erasure_service.list_erasures(services, status="pending" if pending else None)
    views = [erasure_service.erasure_view(record) for record in records]
    if wants_json(ctx, json_output):
        print_json(views)
        return
    if not views:
        console.print("No erasures.")
        return
    rows = [
        [
            v["id"],
            v["email"] if v["status"] == "pending" else str(v["email"])[:19] + "…",
            v["connection"] or ("(every export)" if v["status"] == "suppressed" else "(removed)"),
            v["status"],
            v["attempts"],
            v["last_error"] or "",
        ]
        for v in views
    ]
    columns = ["id", "email", "connection", "status", "attempts", "last error"]
    print_table("Erasures", columns, rows, wide=wide)


@erasures_app.command("retry")
def retry_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Try every pending erasure again now. Exit code 1 while some are still pending."""
    with service_context(ctx) as services:
        done = erasure_service.retry_pending_erasures(services)
        left = len(erasure_service.list_erasures(services, status="pending"))
    if wants_json(ctx, json_output):
        print_json({"done": done, "pending": left})
    else:
        console.print(f"{done} erasure(s) done now; {left} still pending.")
    if left:
        raise typer.Exit(EXIT_FAILED)


@erasures_app.command("lift")
def lift_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The email of the person to export again.")],
    json_output: JsonOption = False,
) -> None:
    """Let a person forgotten with `segsync forget` be exported again (they agreed to be
    contacted). Exit code 1 when they were not suppressed."""
    with service_context(ctx) as services:
        lifted = erasure_service.lift_suppression(services, email)
    if wants_json(ctx, json_output):
        print_json({"lifted": lifted})
    else:
        console.print(
            "Lifted: later runs may export this person again."
            if lifted
            else "This person was not suppressed; nothing changed."
        )
    if not lifted:
        raise typer.Exit(EXIT_FAILED)


@notifications_app.command("list")
def notifications_list_command(
    ctx: typer.Context,
    unread: Annotated[bool, typer.Option("--unread", help="Only unread notices.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Only the newest N.")
    ] = None,
    wide: WideOption = False,
    json_output: JsonOption = False,
) -> None:
    """Notices, newest first, with how each channel delivered them."""
    with service_context(ctx) as services:
        records = notification_service.list_notifications(services, unread_only=unread, limit=limit)
    if wants_json(ctx, json_output):
        print_json([record.to_dict() for record in records])
        return
    if not records:
        console.print("No notifications." if not unread else "No unread notifications.")
        return
    rows = [
        [
            r.id,
            r.at.isoformat(timespec="seconds"),
            r.kind,
            r.export_name,
            r.run_id,
            ", ".join(f"{name}: {d.get('status')}" for name, d in sorted(r.delivered.items())),
            "" if r.read_at is None else "read",
        ]
        for r in records
    ]
    columns = ["id", "at", "event", "export", "run", "delivered", "read"]
    print_table("Notifications", columns, rows, wide=wide)


@notifications_app.command("read")
def notifications_read_command(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(metavar="[ID ...]", help="Notice ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Mark every unread notice read.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Mark notices read (they stay listed, without the unread mark)."""
    if all_ == bool(ids):
        raise InputError("give notification ids or --all (one of the two)")
    with service_context(ctx) as services:
        changed = notification_service.mark_read(services, "all" if all_ else list(ids or []))
    if wants_json(ctx, json_output):
        print_json({"marked_read": changed})
    else:
        console.print(f"{changed} notification(s) marked read.")
