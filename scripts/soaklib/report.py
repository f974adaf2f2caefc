"""A phase's figures: measured at its end, compared, and printed.

Extra requests per crash: the requests Autopilot accepted (answered 2xx; a 408 after commit
is left out, its retry stands for it) beyond what a crash-free run sequence needs — the same
data versions that runs synced, in the same order, each run once with no fault and no kill
against a fresh simulator (the baseline replay) — divided by the kills; the same for writes
alone. Work done for a data version that a crash kept from finishing and that newer data then
superseded counts as extra; so do each resumed attempt's look at the lists, a connection test
after a revoked key, and the list and memberships a list deleted by hand costs. Compare the
extra writes with the writes in flight at the kills: at most those should be sent again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soaklib.baseline import replay
from soaklib.chaos import Phase
from soaklib.check import compare, examples, stuck
from soaklib.data import expectation, read_csv

MUST_BE_ZERO = ("lost", "orphaned", "duplicated", "wrong_fields", "stuck_runs", "undo_mismatches")


@dataclass
class Figures:
    phase: str
    values: dict[str, Any]
    lines: list[str]

    @property
    def failures(self) -> list[str]:
        return [name for name in MUST_BE_ZERO if self.values[name]]


def measure(phase: Phase, *, with_baseline: bool) -> Figures:
    """Compare Autopilot's state with the expectation from the final CSV, and gather every
    figure of the phase."""
    tally = phase.tally
    expected = expectation(read_csv(phase.csv_path(phase.version)))
    result = compare(expected, phase.sim.contacts(), phase.sim.lists())
    runs = phase.segsync.runs()
    held = stuck(runs)
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    counting = phase.sim.counting
    kills = tally.total_kills
    values: dict[str, Any] = {
        "iterations": phase.iterations,
        "data_versions": phase.version,
        "changes": dict(phase.people.changes),
        "kills": kills,
        "sigkill": tally.kills["SIGKILL"],
        "sigterm": tally.kills["SIGTERM"],
        "mid_send": tally.mid_send,
        "faults": dict(tally.faults),
        "runs": statuses,
        "attempts": sum(r.attempts for r in runs),
        "process_exits": dict(tally.exits),
        "requests": counting.requests(),
        "answers": {str(code): n for code, n in sorted(counting.statuses.items())},
        "refusals": phase.sim.answers(accepted=False),
        "bad_requests": list(counting.bad_requests),
        "expected_contacts": len(expected),
        "contacts": len(phase.sim.contacts()),
        "lost": len(result.lost),
        "orphaned": len(result.orphaned),
        "duplicated": len(result.duplicated),
        "wrong_fields": len(result.wrong_fields),
        "extra_lists": result.extra_lists,
        "stuck_runs": len(held),
        "final_run": phase.final_status,
        "held_approved": phase.guard.approved,
        "undos": phase.guard.undos,
        "undo_mismatches": phase.guard.undo_mismatches,
        "guard_requests": sum(phase.guard.by_route.values()),
        "undo_examples": phase.guard.mismatch_examples[:3],
    }
    if with_baseline and tally.synced_versions:
        values["synced_versions"] = len(tally.synced_versions)
        paths = [phase.csv_path(version) for version in tally.synced_versions]
        needed, replayed = replay(paths, phase.destination)
        by_route = phase.sim.answers(accepted=True)
        for route, n in phase.guard.by_route.items():  # the undo steps' own requests
            by_route[route] = by_route.get(route, 0) - n
        extra = sum(by_route.values()) - sum(needed.values())
        extra_writes = sum(n for r, n in by_route.items() if not r.startswith("GET")) - sum(
            n for r, n in needed.items() if not r.startswith("GET")
        )
        values["baseline_requests"] = sum(needed.values())
        values["extra_by_route"] = {
            route: by_route.get(route, 0) - needed.get(route, 0)
            for route in sorted(set(by_route) | set(needed))
            if by_route.get(route, 0) != needed.get(route, 0)
        }
        values["extra_writes"] = extra_writes
        values["extra_writes_per_crash"] = round(extra_writes / kills, 2) if kills else 0.0
        values["baseline_lost"] = len(replayed.lost)
        values["baseline_orphaned"] = len(replayed.orphaned)
        values["extra_requests"] = extra
        values["extra_per_crash"] = round(extra / kills, 2) if kills else 0.0
    values["in_flight_per_kill"] = round(tally.in_flight_at_kill / kills, 2) if kills else 0.0
    lines = _lines(values, result, held)
    return Figures(phase.name, values, lines)


def _lines(values: dict[str, Any], result: Any, held: list[Any]) -> list[str]:
    v = values
    extra = (
        f"extra requests {v['extra_requests']} over a crash-free baseline of "
        f"{v['baseline_requests']}: {v['extra_per_crash']} per crash; writes "
        f"{v['extra_writes']}, {v['extra_writes_per_crash']} per crash, against "
        f"{v['in_flight_per_kill']} writes in flight per kill; by route {v['extra_by_route']} "
        f"(the replay itself: lost {v['baseline_lost']}, orphaned {v['baseline_orphaned']})"
        if "extra_requests" in v
        else f"extra requests: no baseline (writes in flight per kill {v['in_flight_per_kill']})"
    )
    return [
        f"iterations {v['iterations']}, data versions {v['data_versions']}, changes {v['changes']}",
        f"kills {v['kills']}: SIGKILL {v['sigkill']}, SIGTERM {v['sigterm']}, "
        f"mid-send {v['mid_send']}",
        f"faults {v['faults']}",
        f"runs by final status {v['runs']} ({v['attempts']} attempts); final run {v['final_run']}",
        f"requests {v['requests']} (answers {v['answers']}; other than 2xx: {v['refusals']})"
        + examples(v["bad_requests"], 2),
        extra,
        f"contacts {v['contacts']} (expected on lists: {v['expected_contacts']})",
        f"lost {v['lost']}{examples(result.lost)}",
        f"orphaned {v['orphaned']}{examples(result.orphaned)}",
        f"duplicated {v['duplicated']}{examples(result.duplicated)}",
        f"wrong fields {v['wrong_fields']}{examples(result.wrong_fields, 2)}",
        f"extra lists with the same title {v['extra_lists']}",
        f"stuck runs {v['stuck_runs']}{examples(held)}",
        f"guard rails: {v['held_approved']} held run(s) approved; {v['undos']} undo(s), "
        f"{v['undo_mismatches']} mismatch(es) with the state before the undone run"
        f"{examples(v['undo_examples'])}; their {v['guard_requests']} request(s) are not extra",
    ]
