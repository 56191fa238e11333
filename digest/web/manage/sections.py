"""Sections: list, add, rename, remove."""

from __future__ import annotations

from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError
from digest.web import context
from digest.web.auth import require_role
from digest.web.manage.common import bp, field, page, refused, to

__all__ = ["add_section", "remove_section", "sections"]


@bp.get("/sections")
@require_role("operator")
def sections() -> tuple[str, int]:
    catalog = context().core.catalog
    return page("sections.html", sections=catalog.sections(), sources=catalog.sources())


@bp.post("/sections")
@require_role("operator")
def add_section() -> BaseResponse:
    """Add a section, or rename the one with that slug."""
    from flask import flash

    try:
        section, created = context().core.catalog.add_section(field("slug"), field("name"))
    except DigestError as exc:
        return refused(exc, "manage.sections")
    flash(f"Section {section.name} ({section.slug}) {'added' if created else 'renamed'}.", "ok")
    return to("manage.sections")


@bp.post("/sections/<slug>/remove")
@require_role("operator")
def remove_section(slug: str) -> BaseResponse:
    from flask import flash

    try:
        name = context().core.catalog.remove_section(slug)
    except DigestError as exc:
        return refused(exc, "manage.sections")
    flash(f"Section {name} removed.", "ok")
    return to("manage.sections")
