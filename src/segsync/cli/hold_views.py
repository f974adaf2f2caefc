"""How the CLI shows the blast-radius hold's verdict on a run's plan (``runs show``)."""

from __future__ import annotations

from typing import Any

from segsync.cli.output import console, print_table


def print_hold(hold: dict[str, Any] | None, titles: dict[int, str]) -> None:
    """Each list's size before and after, what would leave and join (with samples), and why
    the run was held. ``titles``: segment id → the list's title in the plan."""
    if not hold:
        return
    rows = [
        [
            titles.get(item["segment_id"], str(item["segment_id"])),
            f"{item['before']:,}",
            f"{item['after']:,}",
            f"{item['segment_members']:,}",
            f"{item['to_add']:,}",
            f"{item['to_remove']:,}",
            "first fill" if item["first_fill"] else "HOLDS" if item["held"] else "",
        ]
        for item in hold.get("lists", [])
    ]
    rule = hold.get("rule", {})
    print_table(
        f"Hold (removals {rule.get('removals', '?')}, growth {rule.get('growth', '?')})",
        ["List", "Before", "After", "Segment", "Would join", "Would leave", ""],
        rows,
    )
    for item in hold.get("lists", []):
        title = titles.get(item["segment_id"], str(item["segment_id"]))
        for label, key, total in (
            ("would leave", "leaving_sample", item["to_remove"]),
            ("would join", "joining_sample", item["to_add"]),
        ):
            sample = item.get(key) or []
            if sample:
                more = f" and {total - len(sample):,} more" if total > len(sample) else ""
                console.print(
                    f"  {title} — {label}: {', '.join(sample)}{more}",
                    highlight=False,
                    markup=False,
                )
    approved = hold.get("approved")
    if approved:
        console.print(
            f"approved by {approved.get('by')} at {approved.get('at')}",
            highlight=False,
            markup=False,
        )
    if hold.get("outcome"):
        console.print(f"hold: {hold['outcome']}", highlight=False, markup=False)
