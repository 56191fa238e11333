"""The API's OpenAPI description, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from digest.web.api.base import MAX_PAGE, bp

# -- the OpenAPI description -------------------------------------------------------------------


def _op(
    summary: str,
    *,
    body: str | None = None,
    params: tuple[str, ...] = (),
    ok: str = "200",
    returns: str = "application/json",
) -> dict[str, Any]:
    """One operation: what it does, its parameters, body schema and answers."""
    described: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {"description": "success", "content": {returns: {}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "404": {"$ref": "#/components/responses/Error"},
            "500": {"$ref": "#/components/responses/Bug"},
        },
    }
    if body:
        described["responses"]["413"] = {"$ref": "#/components/responses/Error"}
    if params:
        described["parameters"] = [_PARAMS[p] for p in params]
    if body:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return described


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


_PARAMS: dict[str, dict[str, Any]] = {
    "edition_id": {
        "name": "edition_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    },
    "subscriber_id": {
        "name": "subscriber_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    },
    "action": {
        "name": "action",
        "in": "path",
        "required": True,
        "description": "the review's change",
        "schema": {
            "type": "string",
            "enum": ["drop", "pin", "move", "teaser", "note", "approve"],
        },
    },
    "list": _query("list", "a list's slug"),
    "list!": _query("list", "a list's slug", required=True),
    "date": _query("date", "YYYY-MM-DD; default: today in the list's time zone"),
    "limit": _query("limit", f"rows to return, 1 to {MAX_PAGE} (default 100)"),
    "offset": _query("offset", "rows to skip (default 0)"),
}


def _object(required: list[str], **properties: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": {
            name: {"type": "array", "items": {"type": "string"}}
            if kind == "array"
            else {"type": kind}
            for name, kind in properties.items()
        },
    }


def _edition_op(summary: str, ok: str = "200") -> dict[str, Any]:
    return {"post": _op(summary, params=("edition_id",), ok=ok)}


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Digest operator API",
        "version": "1",
        "description": "Lists, sections, sources, subscribers and editions of a Digest "
        "installation. Every path except this description needs a bearer token made with "
        '`digest tokens create NAME`. Errors are JSON: {"error": "one line"}.',
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/openapi.json": {"get": {**_op("This description"), "security": []}},
        "/api/sections": {
            "get": _op("All sections"),
            "post": _op(
                "Add a section, or rename one (201 created, 200 updated)", body="Section", ok="201"
            ),
        },
        "/api/sources": {
            "get": _op("All feeds with their health: last fetch, errors in a row, last error"),
            "post": _op("Add an http(s) feed to a section", body="Source", ok="201"),
        },
        "/api/lists": {
            "get": _op("All lists with subscriber counts by subscription state"),
            "post": _op("Add or change a list", body="List", ok="201"),
        },
        "/api/subscribers": {
            "get": _op(
                "Subscribers (of one list with ?list), with each subscription's state",
                params=("list", "limit", "offset"),
            ),
            "post": _op(
                "Subscribe an address to a list (confirmed: the operator vouches)",
                body="NewSubscriber",
                ok="201",
            ),
        },
        "/api/subscribers/{subscriber_id}": {
            "delete": _op(
                "Unsubscribe from every list; the record is kept", params=("subscriber_id",)
            ),
        },
        "/api/subscribers/import": {
            "post": {
                **_op(
                    "Import a CSV (columns email,name): added, already, errors by line. "
                    "200: every row was good; 422: some rows were bad (listed in errors), the "
                    "good ones were imported all the same",
                    params=("list!",),
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            },
                        },
                    },
                },
            },
        },
        "/api/editions": {
            "get": _op(
                "Recent editions, newest first, with ledger counts",
                params=("list", "limit", "offset"),
            ),
        },
        "/api/editions/{edition_id}": {
            "get": _op("One edition: status, state, reason and counts", params=("edition_id",)),
            "delete": _op(
                "Drop an edition nobody has received, with its unsent rows", params=("edition_id",)
            ),
        },
        "/api/editions/preview": {
            "get": _op(
                "The HTML of a list's edition, with sample links",
                params=("list!", "date"),
                returns="text/html",
            ),
        },
        "/api/editions/send": {
            "post": _op(
                "Build a list's edition and send it; 202 while it goes out", body="Send", ok="202"
            ),
        },
        "/api/editions/test": {
            "post": _op(
                "Send one copy of a list's edition of a day (built or not) to an address; "
                "no ledger row, nothing else sent",
                body="TestCopy",
            ),
        },
        "/api/editions/{edition_id}/test": {
            "post": {
                **_op(
                    "Send one copy to an address; the ledger is untouched", params=("edition_id",)
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _object(["to"], to="string")}},
                },
            },
        },
        "/api/editions/{edition_id}/pause": _edition_op("Pause a send"),
        "/api/editions/{edition_id}/resume": _edition_op("Resume a paused send", ok="202"),
        "/api/editions/{edition_id}/cancel": _edition_op("Cancel: unsent recipients skipped"),
        "/api/editions/{edition_id}/retry-failed": _edition_op(
            "Send again to the failed recipients only", ok="202"
        ),
        "/api/editions/{edition_id}/retry-now": _edition_op(
            "Try the deferred recipients now (attempts still count)", ok="202"
        ),
        "/api/editions/{edition_id}/review": {
            "get": _op(
                "A held edition as its review shows it: sections, stories, note, history",
                params=("edition_id",),
            )
        },
        "/api/editions/{edition_id}/review/{action}": {
            "post": _op(
                "Change a held edition (drop, pin, move, teaser, note) or approve it; recorded "
                "under the token's name",
                params=("edition_id", "action"),
                body="ReviewChange",
            )
        },
        "/api/editions/{edition_id}/include-late": _edition_op(
            "Add and send to those who subscribed since the build", ok="202"
        ),
        "/api/editions/{edition_id}/rebuild": _edition_op(
            "Build an edition nobody has received again, and send it", ok="202"
        ),
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Error": {
                "description": "bad input (400), an unknown object or an id out of range (404), "
                "a body over 5 MB (413)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "Bug": {
                "description": "a bug in Digest (never bad input): the server's log has the "
                "traceback, the answer only says so",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "Unauthorized": {
                "description": "no token, an unknown one, or a revoked one",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
        "schemas": {
            "Error": _object(["error"], error="string"),
            "ReviewChange": _object([], story="integer", position="integer", text="string"),
            "Section": _object(["slug", "name"], slug="string", name="string"),
            "Source": _object(["url", "section"], url="string", section="string", name="string"),
            "List": _object(
                ["slug", "name", "sections"],
                slug="string",
                name="string",
                sections="array",
                timezone="string",
                send_at="string",
                per_section="integer",
                from_address="string",
                from_name="string",
                when_empty="string",
                utm="string",
                review="boolean",
                review_hours="integer",
                unreviewed="string",
            ),
            "NewSubscriber": _object(
                ["email", "list"], email="string", name="string", list="string", timezone="string"
            ),
            "Send": _object(
                ["list"],
                list="string",
                date="string",
                send_early="boolean",
                include_late="boolean",
            ),
            "TestCopy": _object(["list", "to"], list="string", to="string", date="string"),
        },
    },
}

# Good rows are kept whatever the answer: a 422 lists only the rows that were not imported.
OPENAPI["paths"]["/api/subscribers/import"]["post"]["responses"]["422"] = {
    "description": "some rows were bad: the same report, with the good rows imported",
    "content": {"application/json": {}},
}


@bp.get("/openapi.json")
def openapi() -> Response:
    """Public, so tools can read it before anyone has a token; it holds no data."""
    return jsonify(OPENAPI)
