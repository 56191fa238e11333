"""The operator's JSON API under ``/api/``: lists, sections, sources, subscribers (with CSV
import) and editions (preview, send, test copy, pause, resume, cancel, retry-failed, progress).

Every route but ``/api/openapi.json`` needs ``Authorization: Bearer <token>`` (tokens come
from ``digest tokens create``). A session cookie never authenticates here, so a page in the
operator's browser cannot make calls on their behalf (no CSRF to defend against).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from digest.errors import DigestError, InputError, NotFoundError, TransportError
from digest.service.access import TokenRefused
from digest.web import context

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

#: Most rows one GET returns; ``limit`` asks for fewer, ``offset`` pages on.
MAX_PAGE = 1000
#: Largest row id or offset: ids are PostgreSQL INTEGER columns, so a larger number names
#: nothing, and passed on it would overflow the query (a 500 rather than a 404).
MAX_ROW_ID = 2**31 - 1
#: Longest error message returned; the input it quotes is already cut, this is the backstop.
MAX_ERROR_LENGTH = 500


# -- authentication and errors -------------------------------------------------------------


def error_response(status: int, message: str, **headers: str) -> Response:
    # One line, whatever the exception said: clients log it, people read it.
    response = jsonify({"error": " ".join(message.split())[:MAX_ERROR_LENGTH]})
    response.status_code = status
    response.headers.update(headers)
    return response


def _unauthorized(reason: str) -> Response:
    # RFC 6750 §3: say which scheme is wanted; "invalid_token" only when one was presented.
    challenge = 'Bearer realm="digest"'
    if reason != "missing bearer token":
        challenge += ', error="invalid_token"'
    return error_response(401, reason, **{"WWW-Authenticate": challenge})


@bp.before_request
def require_token() -> Response | None:
    if request.endpoint == "api.openapi":
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _unauthorized("missing bearer token")
    try:
        found = context().core.access.check_token(token)
    except TokenRefused as exc:
        return _unauthorized(str(exc))
    # Who a change is recorded as (an editor's review names the token).
    g.api_token_name = found.name
    # Checked after the token, so a caller without one learns nothing but "401".
    for key, value in (request.view_args or {}).items():
        if isinstance(value, int) and not 1 <= value <= MAX_ROW_ID:
            raise NotFoundError(key.removesuffix("_id"), value)
    return None


@bp.errorhandler(NotFoundError)
def not_found(exc: NotFoundError) -> Response:
    return error_response(404, str(exc))


@bp.errorhandler(TransportError)
def transport_failed(exc: TransportError) -> Response:
    return error_response(503, f"mail transport: {exc}")


@bp.errorhandler(DigestError)
def bad_input(exc: DigestError) -> Response:
    return error_response(400, str(exc))


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response | HTTPException:
    """Unknown routes, wrong methods and oversized bodies under /api/ answer JSON too; the
    rest of the site keeps its own pages."""
    if not request.path.startswith("/api/"):
        return exc
    return error_response(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response | HTTPException:
    """A bug: the traceback goes to the log, the client gets JSON that says so (never the
    traceback, which could name files and values). Input errors never come here: they are
    DigestErrors, answered 400 above."""
    if isinstance(exc, HTTPException):  # this handler is found before the app's one
        return http_error(exc)
    log.exception("unexpected error in %s %s", request.method, request.path)
    return error_response(500, "internal error; the server's log has the details")


# -- request helpers -------------------------------------------------------------------------


def json_body() -> dict[str, Any]:
    """The body as a JSON object, or an InputError: not JSON, not an object, or nested so
    deep that the parser gives up (a few kilobytes of ``[`` reach Python's recursion limit:
    that is a 400, not a crash). Bodies over MAX_CONTENT_LENGTH are a 413 before this."""
    try:
        data = request.get_json(silent=True)
    except RecursionError as exc:
        raise InputError("the request body is nested too deeply") from exc
    if not isinstance(data, dict):
        raise InputError("the request body must be a JSON object")
    return data


def text_field(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InputError(f"{key!r} is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InputError(f"{key!r} must be a string")
    return str(value)


def required_field(data: dict[str, Any], key: str) -> str:
    value = text_field(data, key, required=True)
    assert value is not None
    return value


def page_args() -> tuple[int, int]:
    try:
        limit = int(request.args.get("limit", 100))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        raise InputError("limit and offset must be whole numbers") from exc
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= MAX_ROW_ID:
        raise InputError(f"limit must be 1 to {MAX_PAGE} and offset 0 to {MAX_ROW_ID}")
    return limit, offset


def utc_iso(value: dt.datetime | None) -> str | None:
    # Stored as naive UTC: say so, or clients would read it as their local time.
    return value.isoformat(timespec="seconds") + "Z" if value else None
