"""The OpenAPI document of the HTTP API, served at /admin/api/openapi.json.

tests/test_openapi.py checks it against the router (every HTTP route is here, with its
methods) and fuzzes the server with schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .access import TABLE_ID
from .api import TABLE_CHANGES


def ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


ID_PATTERN = f"^{TABLE_ID.pattern}$"
TABLE = {
    "type": "object",
    "required": ["id", "number", "seats", "area", "status", "session", "restorable", "requests"],
    "properties": {
        "id": {"type": "integer"},
        "number": {"type": "string", "description": "The table's label, e.g. 5, T12, Terrace 3"},
        "seats": {"type": "integer"},
        "area": {"type": "string"},
        "status": {"type": "string", "enum": ["free", "occupied", "disabled"]},
        "session": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["id", "opened_at", "last_active", "guest_count"],
                    "properties": {
                        "id": {"type": "integer"},
                        "opened_at": {"type": "string", "format": "date-time"},
                        "last_active": {"type": "string", "format": "date-time"},
                        "guest_count": {"type": ["integer", "null"]},
                    },
                },
            ]
        },
        "restorable": {"type": "boolean"},
        "restorable_until": {
            "type": ["string", "null"], "format": "date-time",
            "description": "When Restore runs out; null when the table cannot be restored now "
                           "(absent from events recorded before it existed)",
        },
        "requests": {
            "type": "array",
            "description": "Pending waiter requests, oldest first",
            "items": {
                "type": "object",
                "required": ["id", "kind", "since"],
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"type": "string", "enum": ["call_waiter", "ask_for_bill"]},
                    "since": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}
ERROR = {
    "type": "object",
    "required": ["type", "code", "detail"],
    "properties": {
        "type": {"const": "error"},
        "code": {"type": "string", "description": "Stable error code, the same as on the socket"},
        "detail": {"type": "string", "description": "A sentence for a person"},
    },
}
ACK = {
    "type": "object",
    "required": ["type", "version", "tables"],
    "properties": {
        "type": {"const": "ack"},
        "version": {"type": "integer"},
        "tables": {"type": "array", "items": ref("Table")},
    },
}


def error_response(description: str, toast: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": ref("Error")}}
    if toast:  # a change answers a toast-error fragment unless asked for JSON
        content["text/html"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def table_change(verb: str, action: str, deprecated: bool) -> dict[str, Any]:
    form: dict[str, Any] = {
        "type": "object",
        "properties": {
            "csrf_token": {"type": "string", "description": "Required with the sign-in cookie"},
            "back": {"type": "string", "description": "'dashboard': redirect to the dashboard afterwards"},
        },
    }
    if verb == "move":
        form["required"] = ["target"]
        form["properties"]["target"] = {"type": "string", "pattern": ID_PATTERN, "description": "The target table's id"}
    summary = f"{action} (the dashboard's no-script form, and its script's fallback)"
    if deprecated:
        summary = f"{action} (deprecated, for the old HTMX dashboards: use /admin/tables/{{id}}/{verb})"
    return {
        "summary": summary,
        "operationId": f"legacy_{verb}" if deprecated else action,
        "deprecated": deprecated,
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
        ],
        "requestBody": {"required": verb == "move", "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {
            "200": {
                "description": "The change was made (JSON with Accept: application/json); or, as an HTML toast, "
                "the change or the table's refusal (toast-success or toast-error)",
                "content": {
                    "application/json": {"schema": ref("Ack")},
                    "text/html": {"schema": {"type": "string"}},
                },
            },
            "303": {"description": "With back=dashboard: back to the dashboard, the result shown there"},
            "401": error_response("No valid credentials", toast=True),
            "403": error_response(
                "A viewer key, or a cookie request without its CSRF token or from another site", toast=True
            ),
            "404": error_response("table_not_found, source_table_not_found or target_table_not_found", toast=True),
            "409": error_response("The table's state does not allow it (e.g. table_occupied)", toast=True),
            "422": error_response("Bad input: invalid_action or same_table", toast=True),
            "429": error_response("rate_limited", toast=True),
        },
    }


def move_page(operation: str, deprecated: bool) -> dict[str, Any]:
    return {
        "summary": "The page that lists where a party can move (HTML, for a tablet without the script)"
                   + (": its old address; use /admin/tables/{id}/move" if deprecated else ""),
        "operationId": operation,
        "deprecated": deprecated,
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": ID_PATTERN}}],
        "responses": {
            "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
            "303": {"description": "To the sign-in page without a session, or to the dashboard when the table "
                    "has no guests"},
            "404": {"description": "Not a table id"},
        },
    }


def build() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for verb, action, _ in TABLE_CHANGES:
        paths[f"/admin/tables/{{id}}/{verb}"] = {"post": table_change(verb, action, deprecated=False)}
        paths[f"/admin/table/{{id}}/{verb}"] = {"post": table_change(verb, action, deprecated=True)}
    paths["/admin/tables/{id}/move"]["get"] = move_page("move_page", deprecated=False)
    paths["/admin/table/{id}/move"]["get"] = move_page("legacy_move_page", deprecated=True)
    paths["/admin/request/{id}/resolve"] = {"post": {
        "summary": "A guest's waiter request seen to",
        "operationId": "resolve_request",
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": ID_PATTERN}}],
        "requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "properties": {"csrf_token": {"type": "string"}, "back": {"type": "string"}},
        }}}},
        "responses": {
            "200": {"description": "Seen to (JSON with Accept: application/json; otherwise a toast)",
                    "content": {"application/json": {"schema": ref("Ack")},
                                "text/html": {"schema": {"type": "string"}}}},
            "303": {"description": "With back=dashboard: back to the dashboard"},
            "401": error_response("No valid credentials", toast=True),
            "403": error_response("A viewer key, or a cookie request without its CSRF token", toast=True),
            "404": error_response("request_not_found", toast=True),
            "422": error_response("Not a request id", toast=True),
            "429": error_response("rate_limited: over 10 changes a second for this key", toast=True),
        },
    }}
    paths["/admin/api/tables"] = {
        "get": {
            "summary": "All tables of the key's restaurant, as the dashboard shows them",
            "operationId": "api_tables",
            "parameters": [{"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}],
            "responses": {
                "200": {
                    "description": "The tables; the ETag is the restaurant's version",
                    "headers": {"ETag": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"type": "array", "items": ref("Table")}}},
                },
                "304": {"description": "Nothing changed since the version in If-None-Match"},
                "401": error_response("No valid credentials"),
            },
        }
    }
    paths["/admin/api/events"] = {
        "get": {
            "summary": "Table changes after a version, oldest first (at most 500 at a time)",
            "operationId": "api_events",
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
                }
            ],
            "responses": {
                "200": {
                    "description": "The changes",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["version", "events", "more"],
                                "properties": {
                                    "version": {"type": "integer"},
                                    "more": {"type": "boolean"},
                                    "events": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["version", "action", "actor", "at", "tables"],
                                            "properties": {
                                                "version": {"type": "integer"},
                                                "action": {"type": "string"},
                                                "actor": {"type": "string"},
                                                "at": {"type": "string", "format": "date-time"},
                                                "tables": {"type": "array", "items": ref("Table")},
                                            },
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "401": error_response("No valid credentials"),
                "422": error_response("since is not a version number"),
            },
        }
    }
    paths["/admin/tables"] = {
        "get": {
            "summary": "The grid fragment (HTML), for dashboards that poll",
            "operationId": "grid",
            "responses": {
                "200": {"description": "The grid", "content": {"text/html": {"schema": {"type": "string"}}}},
                "304": {"description": "Unchanged since the ETag in If-None-Match"},
                "401": {"description": "No valid credentials"},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Maître HTTP API",
            "version": "1",
            "description": "Live changes come over the dashboard socket; see /docs/protocol.md.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (python run.py key add)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "maitre_session"},
            },
            "schemas": {"Table": TABLE, "Error": ERROR, "Ack": ACK},
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


async def document(request: web.Request) -> web.Response:
    return web.json_response(build())
