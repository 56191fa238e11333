"""Suppressions (addresses never mailed again: list, add, remove) and the subscribers who
bounced or complained."""

from __future__ import annotations

from flask import flash
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError
from digest.web import context
from digest.web.auth import require_role
from digest.web.manage.common import bp, field, page, refused, to

__all__ = ["add_suppression", "remove_suppression", "suppressions"]


@bp.get("/suppressions")
@require_role("operator")
def suppressions() -> tuple[str, int]:
    catalog = context().core.catalog
    return page(
        "suppressions.html",
        suppressions=catalog.suppressions(),
        troubled=catalog.troubled_subscribers(),
    )


@bp.post("/suppressions")
@require_role("operator")
def add_suppression() -> BaseResponse:
    try:
        address, added = context().core.catalog.add_suppression(field("email"), field("reason"))
    except DigestError as exc:
        return refused(exc, "manage.suppressions")
    flash(f"{address} {'is now suppressed' if added else 'was already suppressed'}.", "ok")
    return to("manage.suppressions")


@bp.post("/suppressions/remove")
@require_role("operator")
def remove_suppression() -> BaseResponse:
    try:
        context().core.catalog.remove_suppression(field("email"))
    except DigestError as exc:
        return refused(exc, "manage.suppressions")
    flash(f"{field('email')} may be mailed again.", "ok")
    return to("manage.suppressions")
