"""The API's review of held editions: show, drop, pin, move, teaser, note, approve."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify

from digest.errors import InputError
from digest.service.review import ReviewView
from digest.web import context
from digest.web.api.base import bp, json_body, text_field, utc_iso


def _actor() -> str:
    """Who a change from the API is recorded as: the bearer token's name."""
    return f"{getattr(g, 'api_token_name', 'api')} (api)"


def _view(view: ReviewView) -> dict[str, Any]:
    return {
        "edition": view.edition_id,
        "list": view.list_slug,
        "date": view.day.isoformat(),
        "status": view.status,
        "state": view.state,
        "subject": view.subject,
        "note": view.note,
        "approved_by": view.approved_by,
        "approved_at": utc_iso(view.approved_at),
        "sections": [
            {
                "slug": s.slug,
                "name": s.name,
                "stories": [
                    {
                        "id": a.id,
                        "headline": a.headline,
                        "teaser": a.teaser,
                        "url": a.url,
                        "pinned": a.pinned,
                        "teaser_edited": a.edited,
                        "position": a.position,
                    }
                    for a in s.stories
                ],
            }
            for s in view.sections
        ],
        "events": [
            {"who": e.who, "at": utc_iso(e.at), "action": e.action, "detail": e.detail}
            for e in view.events
        ],
    }


def _number(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise InputError(f"{key!r} must be a whole number from 1")
    return value


@bp.get("/editions/<int:edition_id>/review")
def review_show(edition_id: int) -> Response:
    return jsonify(_view(context().core.review.show(str(edition_id))))


@bp.post("/editions/<int:edition_id>/review/<action>")
def review_change(edition_id: int, action: str) -> Response:
    review, target, who = context().core.review, str(edition_id), _actor()
    data = json_body()
    if action == "drop":
        view = review.drop(target, _number(data, "story"), who)
    elif action == "pin":
        view = review.pin(target, _number(data, "story"), who)
    elif action == "move":
        view = review.move(target, _number(data, "story"), _number(data, "position"), who)
    elif action == "teaser":
        view = review.teaser(target, _number(data, "story"), text_field(data, "text") or "", who)
    elif action == "note":
        view = review.note(target, text_field(data, "text") or "", who)
    elif action == "approve":
        view = review.approve(target, who)
    else:
        raise InputError(
            f"unknown review action {action[:40]!r}: drop, pin, move, teaser, note or approve"
        )
    return jsonify(_view(view))


__all__ = ["review_change", "review_show"]
