"""The long API answers serialised in one pass (``web/api/encode.py``) are exactly their
response models' JSON, and the OpenAPI document still names those models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from segsync.web.api.exports import ExportRowOut
from segsync.web.api.runs import RunOut
from segsync.web.api.status import StatusOut
from tests.web.conftest import WebHarness
from tests.web.test_list_queries import History


def _same_as_model(model: type[BaseModel], body: Any) -> None:
    assert body == model.model_validate(body).model_dump(mode="json")


def test_long_lists_are_their_models_json(web: WebHarness) -> None:
    History(web).grow(2)
    headers = web.bearer(web.api_token("administrator"))
    runs = web.api.get("/api/v1/runs?limit=500", headers=headers)
    assert runs.headers["content-type"] == "application/json"
    assert len(runs.json()) == 2 * 2 * 4  # two exports, each run twice (see History)
    for row in runs.json():
        _same_as_model(RunOut, row)
    rows = web.api.get("/api/v1/exports?sort=status", headers=headers).json()
    assert len(rows) == 2
    for row in rows:
        _same_as_model(ExportRowOut, row)
    status = web.api.get("/api/v1/status?kind=export", headers=headers).json()
    _same_as_model(StatusOut, status)
    assert {task["kind"] for task in status["tasks"]} == {"export"}


def test_the_openapi_document_still_names_the_models(web: WebHarness) -> None:
    paths = web.api.get("/api/v1/openapi.json").json()["paths"]

    def schema(path: str) -> str:
        content = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        return str(content["schema"])

    assert "RunOut" in schema("/api/v1/runs")
    assert "ExportRowOut" in schema("/api/v1/exports")
    assert "StatusOut" in schema("/api/v1/status")
