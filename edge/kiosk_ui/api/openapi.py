"""The OpenAPI 3 document of the JSON API, served at /api/openapi.json.

Each API module describes its own paths next to its routes, as a module-level
`OPENAPI = {"paths": {...}, "schemas": {...}}`, and is listed once in PART_MODULES below;
the document is those parts merged. Helpers for the usual shapes are here.
"""
from __future__ import annotations

import importlib
from typing import Any

from flask import Blueprint, Flask, jsonify

PART_MODULES = [
    "edge.kiosk_ui.api.locker",
    "edge.kiosk_ui.api.diag",
]

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}}},
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def operation(summary: str, ok: dict[str, Any] | None = None, *, body: dict[str, Any] | None = None,
              errors: tuple[int, ...] = (), ok_status: int = 200, courier: bool = False,
              tag: str | None = None) -> dict[str, Any]:
    """One operation: its JSON body, its answer and the error statuses it can give."""
    op: dict[str, Any] = {"summary": summary, "responses": {
        str(ok_status): {"description": "OK", "content": json_content(ok or {"type": "object"})}}}
    if tag:
        op["tags"] = [tag]
    if body is not None:
        op["requestBody"] = {"required": True, "content": json_content(body)}
    for status in sorted(set(errors) | ({401} if courier else set())):
        op["responses"][str(status)] = {"description": "error", "content": json_content(ref("Error"))}
    if courier:
        op["security"] = [{"courierSession": []}]
    return op


def obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required or list(props), "properties": props}


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for name in PART_MODULES:
        part = importlib.import_module(name).OPENAPI
        for path, methods in part["paths"].items():
            paths.setdefault(path, {}).update(methods)
        schemas.update(part.get("schemas", {}))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Community station edge controller: local JSON API", "version": "1"},
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"courierSession": {
                "type": "http", "scheme": "bearer",
                "description": "token from POST /api/locker/courier/login"}},
        },
    }


bp = Blueprint("openapi", __name__)


@bp.get("/api/openapi.json")
def openapi_json() -> Any:
    return jsonify(document())


def register(app: Flask) -> None:
    app.register_blueprint(bp)
