"""``/api/v1/docs``: the API's operations, rendered on the server from the OpenAPI schema.

FastAPI's Swagger UI loads its JavaScript from a CDN, which the CSP and offline use rule out;
this page needs no JavaScript. The machine-readable schema is ``/api/v1/openapi.json``. Both
are public (they describe the API, they hold no data).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from segsync.web.deps import API_PREFIX
from segsync.web.templating import render

router = APIRouter(include_in_schema=False)

PUBLIC_PATHS = frozenset({f"{API_PREFIX}/docs", f"{API_PREFIX}/openapi.json"})
"""The only ``/api/v1`` paths that answer without a bearer token."""

_METHODS = ("get", "post", "put", "patch", "delete")


def _parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.get("name"),
            "where": p.get("in"),
            "required": p.get("required", False),
            "description": p.get("description") or "",
        }
        for p in operation.get("parameters", [])
    ]


def _body(operation: dict[str, Any], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    model = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else schema
    required = set(model.get("required", []))
    return [
        {
            "name": name,
            "required": name in required,
            "description": prop.get("description") or "",
        }
        for name, prop in model.get("properties", {}).items()
    ]


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of the schema: method, path, summary, description, parameters, body."""
    schemas = schema.get("components", {}).get("schemas", {})
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                operation = item[method]
                found.append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "tag": (operation.get("tags") or ["other"])[0],
                        "summary": operation.get("summary", ""),
                        "description": operation.get("description", ""),
                        "parameters": _parameters(operation),
                        "body": _body(operation, schemas),
                    }
                )
    return sorted(
        found, key=lambda op: (op["tag"], op["path"], _METHODS.index(op["method"].lower()))
    )


@router.get(f"{API_PREFIX}/docs")
def docs_page(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    context = {"operations": operations(schema), "info": schema.get("info", {})}
    return render(request, "api_docs.html", context)
