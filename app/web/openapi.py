"""The OpenAPI document of the HTTP API, served at /admin/api/openapi.json.

tests/test_openapi.py checks it against the router (every HTTP route is here, with its
methods) and fuzzes the server with schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..protocol import LARGEST_ID
from ..services.bulk import BULK_AT_MOST
from .access import TABLE_ID
from .actions import ACTIONS, Action


def ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


ID_PATTERN = f"^{TABLE_ID.pattern}$"
TABLE = {
    "type": "object",
    "required": ["id", "number", "seats", "area", "position", "status", "session", "restorable", "requests"],
    "properties": {
        "id": {"type": "integer"},
        "number": {"type": "string", "description": "The table's label, e.g. 5, T12, Terrace 3"},
        "seats": {"type": "integer"},
        "area": {"type": "string"},
        "position": {"type": "integer", "description": "The grid's order: tables sort by position, then id "
                     "(absent from events recorded before it existed)"},
        "status": {"type": "string", "enum": ["free", "occupied", "disabled"]},
        "session": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["id", "opened_at", "last_active", "guest_count", "note", "tables"],
                    "properties": {
                        "id": {"type": "integer", "description": "The party's id (the same on every table it "
                               "sits at)"},
                        "opened_at": {"type": "string", "format": "date-time"},
                        "last_active": {"type": "string", "format": "date-time"},
                        "guest_count": {"type": ["integer", "null"]},
                        "note": {"type": ["string", "null"], "maxLength": 140},
                        "tables": {
                            "type": "array",
                            "description": "Every table the party sits at: its own first, then those joined to it",
                            "items": {"type": "object", "required": ["id", "number"],
                                      "properties": {"id": {"type": "integer"}, "number": {"type": "string"}}},
                        },
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
        "waiter": {"type": ["string", "null"], "description": "The name of the waiter whose section the table is "
                   "in, null for nobody's (absent from events recorded before sections existed)"},
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
                    "claimed_by": {"type": ["string", "null"], "description": "The name of the waiter on the way "
                                   "(absent from events recorded before claims existed)"},
                    "claimed_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        },
    },
}
REMOVED = {
    "type": "object",
    "description": "A table that left the floor (remove_table), as the change records it",
    "required": ["id", "number", "removed"],
    "properties": {"id": {"type": "integer"}, "number": {"type": "string"}, "removed": {"const": True}},
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
ACK: dict[str, Any] = {
    "type": "object",
    "required": ["type", "version", "tables"],
    "properties": {
        "type": {"const": "ack"},
        "version": {"type": "integer"},
        "tables": {"type": "array", "items": {"oneOf": [ref("Table"), ref("Removed")]}},
    },
}
BULK_ACK = {
    "type": "object",
    "required": ["type", "version", "tables", "results"],
    "properties": {
        **ACK["properties"],
        "results": {"type": "array", "description": "Each item's outcome, in order", "items": {
            "type": "object", "required": ["ok"],
            "properties": {"ok": {"type": "boolean"}, "code": {"type": "string"}, "detail": {"type": "string"}}}},
    },
}



def record(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """An object with every one of its properties required."""
    schema: dict[str, Any] = {"type": "object", "required": list(properties), "properties": properties}
    if description:
        schema["description"] = description
    return schema


COUNT = {"type": "integer", "minimum": 0}
MINUTES = {"type": ["number", "null"], "minimum": 0}
SECONDS = {"type": ["number", "null"], "minimum": 0}
DAY = {"type": "string", "format": "date"}
CLOCK = {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}
TURN_ROW = record({"key": {"type": "string", "description": "The area's name, or the seats (\"4 seats\")"},
                   "parties": COUNT, "median_minutes": MINUTES, "p90_minutes": MINUTES})
CALL_ROW = record({"key": {"type": "string", "description": "The kind's label, or the name of the waiter who claimed "
                           "the calls"},
                   "calls": COUNT, "claimed": COUNT, "claim_median_seconds": SECONDS, "claim_p90_seconds": SECONDS,
                   "resolved": {**COUNT, "description": "Seen to by the staff (not ended by the party leaving)"},
                   "resolve_median_seconds": SECONDS, "resolve_p90_seconds": SECONDS})
REPORT = record({
    "restaurant": record({"slug": {"type": "string"}, "name": {"type": "string"}}),
    "waiter": {"type": ["string", "null"], "description": "A waiter's own report (their section's tables, their "
               "calls): whose; null for the whole restaurant"},
    "period": record({
        "start": {"type": "string", "format": "date-time", "description": "The first service day's start, with the "
                  "zone's offset"},
        "end": {"type": "string", "format": "date-time", "description": "The last day's end, or now if sooner"},
        "first_day": DAY, "last_day": DAY, "days": {"type": "integer", "minimum": 1},
        "time_zone": {"type": "string"}, "day_starts_at": CLOCK, "label": {"type": "string"},
    }),
    "totals": record({
        "parties": COUNT, "covers": {**COUNT, "description": "Guests seated"},
        "unknown_size": {**COUNT, "description": "Parties seated without a guest count"},
        "tables_used": COUNT, "tables": COUNT, "restores": COUNT, "calls": COUNT,
    }),
    "hours": {"type": "array", "description": "Covers and parties seated in each hour of the service day, summed "
              "over the period", "items": record({"hour": CLOCK, "parties": COUNT, "covers": COUNT})},
    "occupancy": record({
        "slot_minutes": {"type": "integer", "minimum": 1},
        "areas": {"type": "array", "items": {"type": "string"}},
        "tables": {"type": "object", "additionalProperties": COUNT, "description": "Each area's tables"},
        "slots": {"type": "array", "items": record({
            "at": CLOCK,
            "areas": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                      "description": "Tables occupied in each area, on average over the slot (and the days)"}})},
    }),
    "turns": record({
        "all": TURN_ROW,
        "by_area": {"type": "array", "items": TURN_ROW},
        "by_size": {"type": "array", "items": TURN_ROW},
        "distribution": {"type": "array", "items": record({
            "from_minutes": COUNT, "to_minutes": {"type": ["integer", "null"]}, "parties": COUNT})},
    }, "Seated to closed"),
    "calls": record({"by_kind": {"type": "array", "items": CALL_ROW},
                     "by_waiter": {"type": "array", "items": CALL_ROW}}, "Guests' calls"),
    "heat_map": record({
        "first_day": DAY, "last_day": DAY,
        "hours": {"type": "array", "items": CLOCK},
        "rows": {"type": "array", "items": record({
            "weekday": {"type": "string", "enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
            "covers": {"type": "array", "items": COUNT}})},
        "max": COUNT,
    }, "Covers by weekday and hour over the last four weeks"),
    "unused_tables": {"type": "array", "items": record({
        "id": {"type": "integer"}, "number": {"type": "string"}, "area": {"type": "string"}, "seats": COUNT})},
    "restores": {"type": "array", "items": record({"day": DAY, "restores": COUNT})},
})

def error_response(description: str, toast: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": ref("Error")}}
    if toast:  # a change answers a toast-error fragment unless asked for JSON
        content["text/html"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


FIELDS: dict[str, dict[str, Any]] = {  # each form field a change may take, as a form sends it
    "to_table_id": {"type": "string", "pattern": ID_PATTERN, "description": "The table the party moves to "
                    "(the old dashboards' forms call it target, which is taken too)"},
    "target": {"type": "string", "pattern": ID_PATTERN, "description": "to_table_id, as the old dashboards name it"},
    "with_table_id": {"type": "string", "pattern": ID_PATTERN, "description": "The free table joined to the party"},
    "guest_count": {"type": "string", "pattern": "^[1-9][0-9]?$", "description": "1 to 99; seat_table without it "
                    "(or with it empty) seats as many as the table has seats"},
    "note": {"type": "string", "maxLength": 140, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
             "description": "Up to 140 characters, one line; empty clears the note"},
    "label": {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "\\S",
              "description": "1 to 40 characters, unique among the restaurant's tables"},
    "seats": {"type": "string", "pattern": "^([1-9][0-9]?|100)?$", "description": "1 to 100 (empty: unchanged, or "
              "4 for a new table)"},
    "area": {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "\\S", "description": "1 to 40 characters"},
    "position": {"type": "string", "pattern": f"^({TABLE_ID.pattern})?$",
                 "description": "The table's place in the grid's order, 1 for the first (past the end: last; "
                 "empty: unchanged)"},
}


def change(action: Action, deprecated: bool) -> dict[str, Any]:
    form: dict[str, Any] = {
        "type": "object",
        "properties": {
            "csrf_token": {"type": "string", "description": "Required with the sign-in cookie"},
            "back": {"type": "string", "description": "'dashboard' or 'floor': redirect to that page afterwards"},
        },
    }
    names = [*action.ids[1:], *action.values] if "{id}" in action.path else [*action.ids, *action.values]
    if action.name == "move_table" and deprecated:  # the old forms' name (either name is read on either path;
        names = ["target"]  # each path documents its own forms', as sending both is ambiguous)
    for name in names:
        form["properties"][name] = FIELDS[name]
    required = list(names) if action.name == "move_table" else [*action.ids[1:]]
    if action.name == "add_table":
        required = ["label"]
    if action.name in ("set_guest_count", "set_note"):
        required = [*required, *action.values]
    if required:
        form["required"] = required
    if action.name == "set_table":  # something to change (an empty number is no change)
        form["anyOf"] = [{"required": [name], "properties": {name: {"minLength": 1}}} for name in action.values]
    if action.name == "seat_table":  # empty: the table's seats
        form["properties"]["guest_count"] = {**FIELDS["guest_count"], "pattern": "^([1-9][0-9]?)?$"}
    summary = f"{action.name} (the socket's action, over HTTP: the pages' no-script forms and their script's fallback)"
    if deprecated:
        summary = f"{action.name} (deprecated, for the old HTMX dashboards: use {action.path})"
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": f"legacy_{action.legacy_verb}" if deprecated else action.name,
        "deprecated": deprecated,
        "requestBody": {"required": bool(required) or "anyOf" in form,
                        "content": {"application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {
            "200": {
                "description": "The change was made (JSON with Accept: application/json); or, as an HTML toast, "
                "the change or the table's refusal (toast-success or toast-error)",
                "content": {
                    "application/json": {"schema": ref("Ack")},
                    "text/html": {"schema": {"type": "string"}},
                },
            },
            "303": {"description": "With back=dashboard or back=floor: back to that page, the result shown there"},
            "401": error_response("No valid credentials", toast=True),
            "403": error_response("forbidden: the key's role may not (a viewer; the floor is admins'); or a cookie "
                                  "request without its CSRF token or from another site", toast=True),
            "404": error_response("table_not_found, source_table_not_found, target_table_not_found or "
                                  "request_not_found", toast=True),
            "409": error_response("The table's state does not allow it (e.g. table_occupied, label_taken)",
                                  toast=True),
            "422": error_response("Bad input: invalid_action, same_table, invalid_guest_count, invalid_note, "
                                  "invalid_label, invalid_seats, invalid_area or invalid_position", toast=True),
            "429": error_response("rate_limited", toast=True),
        },
    }
    if "{id}" in action.path:
        operation["parameters"] = [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}]
    return operation


def pick_page(operation: str, what: str, deprecated: bool = False) -> dict[str, Any]:
    return {
        "summary": f"The page that lists the free tables a party can {what} (HTML, for a tablet without the script)"
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


def bulk() -> dict[str, Any]:
    whole = {"type": "integer", "minimum": -LARGEST_ID, "maximum": LARGEST_ID}
    item = {"description": "One action with its fields, as on the socket", "oneOf": [
        {"type": "object", "required": ["action", *action.ids],
         "properties": {"action": {"const": name}, **{field: whole for field in action.ids}}}
        for name, action in sorted(ACTIONS.items())]}
    message = {"type": "object", "required": ["actions"], "properties": {
        "atomic": {"type": "boolean", "default": True, "description": "true: all or nothing (bulk_failed names the "
                   "item that failed); false: each item on its own, its outcome in results"},
        "actions": {"type": "array", "minItems": 1, "maxItems": BULK_AT_MOST, "items": item}}}
    form = {"type": "object", "required": ["action", "table_id"], "properties": {
        "action": {"type": "string", "enum": sorted(name for name, action in ACTIONS.items() if action.ids == (
            "table_id",))},
        "table_id": {"type": "array", "minItems": 1, "maxItems": BULK_AT_MOST,
                     "items": {"type": "string", "pattern": ID_PATTERN}},
        "csrf_token": {"type": "string", "description": "Required with the sign-in cookie"},
        "back": {"type": "string", "description": "'dashboard': redirect to the dashboard afterwards"}}}
    return {
        "summary": "Several changes in one transaction: the socket's bulk (docs/protocol.md); our no-script forms "
                   "send one action for each table_id",
        "operationId": "bulk",
        "requestBody": {"required": True, "content": {"application/json": {"schema": message},
                                                      "application/x-www-form-urlencoded": {"schema": form}}},
        "responses": {
            "200": {"description": "Done: every item's outcome in results (all ok, for an atomic bulk)",
                    "content": {"application/json": {"schema": BULK_ACK}}},
            "303": {"description": "A form with back=dashboard: back to the dashboard, the result shown there"},
            "401": error_response("No valid credentials"),
            "403": error_response("forbidden: the key may not change tables; or a cookie request without its CSRF "
                                  "token (X-CSRF-Token) or from another site"),
            "409": error_response("bulk_failed: an item of an atomic bulk failed, so nothing was changed; failed "
                                  "names its index (from 0), code and detail"),
            "422": error_response("A malformed bulk, refused whole: invalid_json, invalid_action, unknown_action, "
                                  f"bulk_too_large (more than {BULK_AT_MOST} actions)"),
            "429": error_response("rate_limited"),
        },
    }


def refusal(description: str) -> dict[str, Any]:
    """A page's form refused before anything is done: JSON for a Bearer key, a line of text for a person."""
    return {"description": description, "content": {"application/json": {"schema": ref("Error")},
                                                     "text/plain": {"schema": {"type": "string"}}}}


def sections() -> dict[str, Any]:
    """The sections page and its forms: a signed-in admin's page (post, redirect, get); a Bearer key is answered
    in JSON."""
    form = {"type": "object", "required": ["waiter"], "properties": {
        "waiter": {"type": "string", "description": "The waiter's name: a live waiter key's (run.py key add SLUG "
                   "--role waiter --name NAME)"},
        "area": {"type": "array", "items": {"type": "string"}, "description": "Each whole area of the section"},
        "table_id": {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN},
                     "description": "Each single table of the section (it wins over its area's waiter)"},
        "csrf_token": {"type": "string", "description": "Required with the sign-in cookie"}}}
    return {
        "get": {
            "summary": "Waiters' sections (HTML, admin keys): a form for each waiter, with every area and table",
            "operationId": "sections",
            "responses": {
                "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
                "303": {"description": "To the sign-in page without a session; to the dashboard for a key that may "
                        "not edit the floor"},
            },
        },
        "post": {
            "summary": "A waiter's section becomes exactly these areas and tables (none: the waiter has no section); "
                       "the tables whose waiter changed are pushed to every dashboard",
            "operationId": "set_section",
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}},
            "responses": {
                "200": {"description": "Done (a Bearer key): the tables whose waiter changed",
                        "content": {"application/json": {"schema": ref("Ack")}}},
                "303": {"description": "The sections page's form (the sign-in cookie): back to it, the result shown "
                        "there; or to the sign-in page once the sign-in has ended"},
                "401": error_response("No valid credentials"),
                "403": refusal("forbidden: only an admin key may set sections; or a cookie request without its CSRF "
                               "token or from another site"),
                "404": error_response("table_not_found (a removed table, another restaurant's), waiter_not_found "
                                      "(no waiter key has the name, and no section does) or area_not_found"),
                "422": refusal("invalid_action: a table_id that is not a table id, or a body that is not a form"),
                "429": refusal("rate_limited"),
            },
        },
    }


PERIOD = [
    {"name": "day", "in": "query", "required": False, "schema": DAY, "description": "One service day"},
    {"name": "from", "in": "query", "required": False, "schema": DAY,
     "description": "The first day of a range (with to; both included, at most 90 days)"},
    {"name": "to", "in": "query", "required": False, "schema": DAY, "description": "The last day of the range"},
]
REPORT_REFUSALS = {
    "400": error_response("invalid_period: a day that is not YYYY-MM-DD, from without to, a range backwards or "
                          "longer than 90 days"),
    "401": error_response("No valid credentials"),
    "403": error_response("forbidden: only admin and waiter keys see reports"),
    "429": error_response("rate_limited: too many failed sign-ins from this address"),
}


def reports() -> dict[str, Any]:
    """The page, the CSV and the JSON of a period's report: none of them given, the last service."""
    page = "The reasons, with the form to choose again (HTML; JSON for a Bearer key refused outright)"
    return {
        "/admin/reports": {"get": {
            "summary": "Reports (HTML, admin and waiter keys): the period's charts, each with its numbers",
            "operationId": "reports",
            "parameters": PERIOD,
            "responses": {
                "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
                "303": {"description": "To the sign-in page without a session"},
                "400": {"description": f"invalid_period. {page}",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
                "401": error_response("A Bearer key that is not valid"),
                "403": {"description": f"forbidden: a viewer key. {page}",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
                "429": error_response("rate_limited: too many failed sign-ins from this address"),
            },
        }},
        "/admin/reports.csv": {"get": {
            "summary": "The period's parties as CSV, one row each (table, area, seated, closed, guests, calls, "
                       "waits); text that a spreadsheet would run as a formula starts with an apostrophe",
            "operationId": "reports_csv",
            "parameters": PERIOD,
            "responses": {
                "200": {"description": "The rows, as an attachment",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {"text/csv": {"schema": {"type": "string"}}}},
                **REPORT_REFUSALS,
            },
        }},
        "/admin/api/reports": {"get": {
            "summary": "The period's report: covers and parties by hour, occupancy, turn times, calls, the heat map, "
                       "tables never used, restores",
            "operationId": "api_reports",
            "parameters": PERIOD,
            "responses": {
                "200": {"description": "The report", "content": {"application/json": {"schema": ref("Report")}}},
                **REPORT_REFUSALS,
            },
        }},
    }

def build() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for action in ACTIONS.values():
        paths[action.path] = {"post": change(action, deprecated=False)}
        if action.legacy_verb:
            paths[f"/admin/table/{{id}}/{action.legacy_verb}"] = {"post": change(action, deprecated=True)}
    paths["/admin/tables/{id}/move"]["get"] = pick_page("move_page", "move to")
    paths["/admin/tables/{id}/join"]["get"] = pick_page("join_page", "be joined by")
    paths["/admin/table/{id}/move"]["get"] = pick_page("legacy_move_page", "move to", deprecated=True)
    paths["/admin/floor"] = {"get": {
        "summary": "The floor editor (HTML, admin keys): each table's label, seats, area and place; add, remove",
        "operationId": "floor",
        "responses": {
            "200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
            "303": {"description": "To the sign-in page without a session; to the dashboard for a key that may "
                    "not edit the floor"},
        },
    }}
    paths["/admin/sections"] = sections()
    paths.update(reports())
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
                "429": error_response("rate_limited: too many failed sign-ins from this address"),
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
                                                "tables": {"type": "array", "items": {
                                                    "oneOf": [ref("Table"), ref("Removed")]}},
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
                "429": error_response("rate_limited: too many failed sign-ins from this address"),
            },
        }
    }
    paths["/admin/api/bulk"] = {"post": bulk()}
    paths["/admin/tables"]["get"] = {
        "summary": "The grid fragment (HTML), for dashboards that poll",
        "operationId": "grid",
        "responses": {
            "200": {"description": "The grid", "content": {"text/html": {"schema": {"type": "string"}}}},
            "304": {"description": "Unchanged since the ETag in If-None-Match"},
            "401": {"description": "No valid credentials"},
        },
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
            "schemas": {"Table": TABLE, "Removed": REMOVED, "Error": ERROR, "Ack": ACK, "Report": REPORT},
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


async def document(request: web.Request) -> web.Response:
    return web.json_response(build())
