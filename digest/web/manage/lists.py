"""Lists: every setting, edited in place, a preview link, enable/disable, show/hide, remove."""

from __future__ import annotations

from typing import Any

from flask import abort, flash
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError, InputError, NotFoundError
from digest.web import context
from digest.web.auth import require_role
from digest.web.manage.common import bp, field, page, refused, to

__all__ = ["add_list", "edit_list", "list_action", "lists", "save_list"]

#: The list page's form fields and the catalog's option each one sets.
TEXT_OPTIONS = {
    "timezone": "timezone",
    "send_at": "send_at",
    "from_address": "from_address",
    "from_name": "from_name",
    "language": "language",
    "subject": "subject",
}


def _sections() -> list[str]:
    """The sections in the order typed (``a, b, c``) or ticked."""
    from flask import request

    typed = [s.strip() for s in field("sections").split(",") if s.strip()]
    ticked = [s[:100] for s in request.form.getlist("section") if isinstance(s, str)]
    return typed or ticked


def _options() -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, option in TEXT_OPTIONS.items():
        value = field(name).strip()
        if value or name in ("from_address", "from_name", "subject"):
            options[option] = value if value else None
    if options.get("from_address") is None:
        options.pop("from_address", None)
    per_section = field("per_section").strip()
    if per_section:
        if not per_section.isdecimal() or len(per_section) > 6:
            raise InputError("stories per section is a whole number")
        options["per_section"] = int(per_section)
    options["order_sections_by_clicks"] = field("order_sections_by_clicks") == "on"
    for name in ("when_empty", "unreviewed"):
        chosen = field(name).strip()
        if chosen:
            options[name] = chosen  # the catalog refuses anything but its choices
    # Empty: no tracking tags (the field shows the list's current ones).
    options["utm"] = field("utm").strip()
    options["review"] = field("review") == "on"
    review_hours = field("review_hours").strip()
    if review_hours:
        if not review_hours.isdecimal() or len(review_hours) > 3:
            raise InputError("hours of review ahead is a whole number")
        options["review_hours"] = int(review_hours)
    return options


@bp.get("/lists")
@require_role("operator")
def lists() -> tuple[str, int]:
    catalog = context().core.catalog
    return page("lists.html", lists=catalog.lists(), sections=catalog.sections())


@bp.post("/lists")
@require_role("operator")
def add_list() -> BaseResponse:
    catalog = context().core.catalog
    slug = field("slug").strip()
    try:
        if catalog.lists() and slug in {m.slug for m in catalog.lists()}:
            raise InputError(f"a list {slug} already exists: edit it below")
        mailing_list, _ = catalog.add_list(slug, field("name"), _sections(), **_options())
    except DigestError as exc:
        return refused(exc, "manage.lists")
    flash(f"List {mailing_list.name} added.", "ok")
    return to("manage.edit_list", slug=mailing_list.slug)


@bp.get("/lists/<slug>")
@require_role("operator")
def edit_list(slug: str) -> tuple[str, int]:
    catalog = context().core.catalog
    try:
        mailing_list = catalog.get_list(slug)
    except NotFoundError:
        abort(404)
    return page("list.html", mailing_list=mailing_list, sections=catalog.sections())


@bp.post("/lists/<slug>")
@require_role("operator")
def save_list(slug: str) -> BaseResponse:
    catalog = context().core.catalog
    try:
        current = catalog.get_list(slug)
        options = _options()
        if "subject" in options and options["subject"] is None:
            options["subject"] = ""  # empty: back to the default subject
        catalog.add_list(current.slug, field("name"), _sections(), **options)
        enabled, public = field("enabled") == "on", field("public") == "on"
        if enabled != current.enabled:
            catalog.set_list_enabled(slug, enabled)
        if public != current.public:
            catalog.set_list_public(slug, public)
    except NotFoundError:
        abort(404)
    except DigestError as exc:
        return refused(exc, "manage.edit_list", slug=slug)
    flash("Saved.", "ok")
    return to("manage.edit_list", slug=slug)


@bp.post("/lists/<slug>/remove")
@require_role("operator")
def list_action(slug: str) -> BaseResponse:
    try:
        removed = context().core.catalog.remove_list(slug)
    except NotFoundError:
        abort(404)
    except DigestError as exc:
        return refused(exc, "manage.edit_list", slug=slug)
    flash(f"List {removed.name} removed.", "ok")
    return to("manage.lists")
