"""The blueprint the management pages share, and their helpers (the package docstring says
more). The operator's management pages under ``/dashboard/``: sections, sources, lists,
subscribers, suppressions and bounces. One blueprint, a module per page group; every page needs
the operator role, every change is a POST with the session's CSRF token, and every change
goes through ``digest.service`` (the catalog facade), whose InputError becomes a message on
the page, never a 500."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    request,
)
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError
from digest.web.auth import check_role, csrf_ok
from digest.web.frame import dashboard_page

__all__ = ["FIELD_LIMIT", "MANAGE_CSP", "bp", "field", "guard", "headers", "page", "refused", "to"]

bp = Blueprint("manage", __name__, url_prefix="/dashboard")

#: Like the overview's: no scripts, forms post only here, previews framed from this site.
MANAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
#: The longest value any management form field takes (longer is cut, then checked).
FIELD_LIMIT = 2000


@bp.before_request
def guard() -> Any:
    """Operators only; a change needs the session's CSRF token (checked before anything)."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
        request.form.get("csrf_token")
    ):
        abort(400, "The form's security token is missing or out of date. Reload and retry.")
    return check_role("operator")


@bp.after_request
def headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", MANAGE_CSP)
    response.headers["Cache-Control"] = "no-store"
    return response


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """A management page in the dashboard's frame."""
    return dashboard_page(f"manage/{template}", status, **values)


def field(name: str) -> str:
    """A form field as text (absent: empty), cut to FIELD_LIMIT characters."""
    value = request.form.get(name, "")
    return value[:FIELD_LIMIT] if isinstance(value, str) else ""


def to(endpoint: str, **values: Any) -> BaseResponse:
    from flask import url_for

    return redirect(url_for(endpoint, **values), 303)


def refused(exc: DigestError, endpoint: str, **values: Any) -> BaseResponse:
    """Say why a change was refused, back on the page it came from."""
    flash(str(exc), "error")
    return to(endpoint, **values)
