"""The guard rails in the soak (docs/exports.md "Blast-radius hold", "Undo a run"):

* every run that ends **Held** is approved (``runs approve ID``), so the hold's approve path runs
  under the same chaos as everything else (the soak's export holds at 10% of a list,
  ``soaklib.cli.HOLD_REMOVALS``, so the data's changes trip it often);
* now and then, an **undo** step: with the faults off, Autopilot's state is read, the data
  changes and a run sends it, ``runs undo`` reverses that run, and Autopilot's lists and the
  mapped fields of the contacts that existed must be exactly as read before (a difference is an
  ``undo_mismatch``); then a run sends the data again. The requests of the undo and of that
  second run are the guard's own, kept apart from the crash figures.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soaklib.cli import Segsync
from soaklib.data import EXPORT
from soaklib.sim import SoakSimulator

APPROVALS = 3  # a run held again after its approval (the data changed) is approved again


@dataclass
class GuardTally:
    held: int = 0
    approved: int = 0
    undos: int = 0
    undo_mismatches: int = 0
    mismatch_examples: list[str] = field(default_factory=list)
    by_route: Counter[str] = field(default_factory=Counter)  # the guard's own accepted requests


def _record(out: str) -> dict[str, Any]:
    try:
        return dict(json.loads(out))
    except ValueError:
        return {}


def approve_held(segsync: Segsync, status: str, tally: GuardTally) -> str:
    """Approve the latest Held run until it ends otherwise; the status it ends with."""
    for _ in range(APPROVALS):
        if status != "held":
            return status
        held = [run for run in segsync.runs() if run.status == "held"]
        if not held:
            return status
        tally.held += 1
        done = segsync.run("runs", "approve", str(held[-1].id), "--json")
        tally.approved += 1
        status = str(_record(done.stdout).get("status", f"exit {done.returncode}")).lower()
    return status


def run_to_end(segsync: Segsync, tally: GuardTally) -> dict[str, Any]:
    """One ``exports run`` to its end (approved if held): its run record."""
    done = segsync.run("exports", "run", EXPORT, "--json")
    record = _record(done.stdout)
    record["status"] = approve_held(segsync, str(record.get("status", "")).lower(), tally)
    return record


def state(sim: SoakSimulator) -> tuple[dict[str, set[str]], dict[str, tuple[Any, ...]]]:
    """Each list's members (by list id) and each contact's mapped fields."""
    members: dict[str, set[str]] = {item["list_id"]: set() for item in sim.lists()}
    fields: dict[str, tuple[Any, ...]] = {}
    for contact in sim.contacts():
        email = contact["Email"]
        for list_id in contact.get("lists", []):
            members.setdefault(list_id, set()).add(email)
        custom = sorted((c["kind"], str(c["value"])) for c in contact.get("custom_fields", []))
        fields[email] = (contact.get("FirstName"), contact.get("LastName"), tuple(custom))
    return members, fields


def undo_step(
    segsync: Segsync,
    sim: SoakSimulator,
    tally: GuardTally,
    *,
    change_data: Callable[[], None],
    note: Callable[[str], object],
) -> None:
    """Read Autopilot, change the data and run, undo that run, compare, run again. ``note``
    hears the status of each run that synced a data version (the crash-free baseline's)."""
    settled = str(run_to_end(segsync, tally).get("status"))
    note(settled)
    if settled != "successful":
        return  # what chaos left does not sync now: no undo this time
    before = state(sim)
    change_data()
    run = run_to_end(segsync, tally)
    note(str(run.get("status")))
    if run.get("status") != "successful" or "id" not in run:
        return
    accepted = sim.answers(accepted=True)
    done = segsync.run("runs", "undo", str(run["id"]), "--json")
    status = approve_held(segsync, str(_record(done.stdout).get("status", "")).lower(), tally)
    if status == "successful":
        tally.undos += 1
        lists, fields = state(sim)
        lost = {
            f"{email} off list {list_id} after the undo"
            for list_id, emails in before[0].items()
            for email in emails - lists.get(list_id, set())
        }
        extra = {
            f"{email} still on list {list_id} after the undo"
            for list_id, emails in lists.items()
            for email in emails - before[0].get(list_id, set())
        }
        wrong = {
            f"{email}: {fields.get(email)} != {values}"
            for email, values in before[1].items()
            if fields.get(email) != values
        }
        problems = sorted(lost | extra | wrong)
        tally.undo_mismatches += len(problems)
        tally.mismatch_examples.extend(problems[:3])
    else:
        tally.mismatch_examples.append(f"undo of run {run['id']} ended {status}: {done.stdout}")
        tally.undo_mismatches += 1
    run_to_end(segsync, tally)  # the data again
    after = sim.answers(accepted=True)
    tally.by_route.update(
        {r: n - accepted.get(r, 0) for r, n in after.items() if n > accepted.get(r, 0)}
    )
