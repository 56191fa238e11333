"""Sources: health (last fetch, errors, next try), add with the CLI's check, enable, disable,
remove. The browser adds only http(s) feeds: a path on the server is the CLI's business."""

from __future__ import annotations

from flask import flash
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError, InputError
from digest.web import context
from digest.web.auth import require_role
from digest.web.manage.common import bp, field, page, refused, to

__all__ = ["add_source", "source_action", "sources"]


@bp.get("/sources")
@require_role("operator")
def sources() -> tuple[str, int]:
    catalog = context().core.catalog
    return page("sources.html", sources=catalog.sources(), sections=catalog.sections())


@bp.post("/sources")
@require_role("operator")
def add_source() -> BaseResponse:
    """Check the feed once (nothing stored), then add it; a feed that cannot be read now is
    added with a warning, unless "only if it reads now" was ticked."""
    catalog = context().core.catalog
    url = field("url").strip()
    allow_private = field("allow_private") == "on"
    try:
        if not url.lower().startswith(("http://", "https://")):
            raise InputError("a feed address starts with http:// or https://")
        location = catalog.check_location(url)
        checked = catalog.check_feed(location, allow_private=allow_private)
        if field("strict") == "on" and checked.error is not None:
            raise InputError(f"source not added: {checked.describe()}")
        source, created = catalog.add_source(
            location,
            field("section"),
            field("name").strip() or None,
            allow_private=allow_private,
        )
    except DigestError as exc:
        return refused(exc, "manage.sources")
    flash(
        f"Source {source.name} {'added' if created else 'updated'} in {source.section_name}: "
        f"{checked.describe()}",
        # Added all the same: a warning, not a refusal ("Not done:" would say it was not added).
        "warn" if checked.error else "ok",
    )
    return to("manage.sources")


@bp.post("/sources/<int:source_id>/<action>")
@require_role("operator")
def source_action(source_id: int, action: str) -> BaseResponse:
    catalog = context().core.catalog
    try:
        if action in ("enable", "disable"):
            source = catalog.set_source_enabled(source_id, action == "enable")
            flash(f"Source {source.name} {action}d.", "ok")
        elif action == "remove":
            source, kept = catalog.remove_source(source_id)
            flash(f"Source {source.name} removed; its {kept} articles are kept.", "ok")
        else:
            raise InputError(f"unknown action {action!r}")
    except DigestError as exc:
        return refused(exc, "manage.sources")
    return to("manage.sources")
