"""Fuzz every REST API operation from its own OpenAPI schema (schemathesis), once per role with
that role's token: whatever is sent, valid or not, the API never answers 5xx, a refusal (4xx)
leaves the metadata DB as it was, and no answer carries the planted canary key. A token the fuzz
revokes is made again before the next case (tests/fuzz/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.fuzz.conftest import CANARY, ROLES, Seeded
from tests.fuzz.tally import Tally, examples, full_run, metadata_digest, tally


def _fuzz(seeded: Seeded, operation: Any, mode: GenerationMode, role: str, figures: Tally) -> None:
    label = f"{role} {operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples(short=1, full=12),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        token = seeded.token(role)
        before = metadata_digest(seeded.db_file)
        try:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
        except Exception as err:  # the app raised through the test client
            figures.add("traceback", f"{label}: {type(err).__name__}: {err}"[:800])
            return
        status = response.status_code
        if CANARY in response.text:
            figures.add("canary_hit", label)
        if status >= 500:
            figures.add("server_error", f"{label} answered {status}: {response.text[:300]}")
        elif status >= 400:
            figures.add("clean")
            if metadata_digest(seeded.db_file) != before:
                figures.add("state_change", f"{label} answered {status}: {case.body!r}"[:500])
        else:
            figures.add("ok")

    check()


@pytest.mark.parametrize("role", ROLES)
def test_every_api_operation_as_every_role(seeded: Seeded, role: str) -> None:
    if role != "administrator" and not full_run():
        pytest.skip("the short fuzz (make test) runs as administrator; make fuzz runs every role")
    figures = tally(f"API operations (schemathesis, {role})")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", seeded.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(seeded, operation, mode, role, figures)
    assert len(operations) >= 30
    assert figures.tries > 0
    assert figures.bad == 0, "\n".join(figures.examples)
