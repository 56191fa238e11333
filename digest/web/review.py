"""The editors' review page under ``/dashboard/review/``: a held edition's sections and
stories, with a form for each change (drop, pin, move, teaser), the note, the approval and
the history of every change.

A blueprint nested in the dashboard's, so its sign-in check, CSRF check and headers apply
here too; every change is a POST that answers with a redirect back to the page. Only the
service is asked (``Digest.review``).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError, NotFoundError
from digest.web import context
from digest.web.auth import current_user, require_role
from digest.web.frame import dashboard_page

bp = Blueprint("review", __name__, url_prefix="/review")

#: Changes a story takes, as the form names them.
STORY_ACTIONS = ("drop", "pin", "move", "teaser")


def _actor() -> str:
    """Who makes a change from the dashboard: the signed-in user's name (the built-in
    operator of DIGEST_OPERATOR_PASSWORD is "operator")."""
    me = current_user()
    return me.name if me is not None else "operator"


def _render(template: str, status: int = 200, **values: object) -> tuple[str, int]:
    return dashboard_page(template, status, **values)


@bp.get("/")
@require_role("editor")
def index() -> tuple[str, int]:
    """Every edition held for review."""
    return _render("review-list.html", held=context().core.review.held())


@bp.get("/<int:edition_id>")
@require_role("editor")
def show(edition_id: int) -> tuple[str, int]:
    try:
        view = context().core.review.show(str(edition_id))
    except NotFoundError:
        abort(404)
    return _render("review.html", view=view, teaser_length=300, note_length=600)


def _back(edition_id: int) -> BaseResponse:
    return redirect(url_for("dashboard.review.show", edition_id=edition_id), 303)


def _story_id() -> int:
    raw = request.form.get("story", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise DigestError("choose a story")
    return int(raw)


@bp.post("/<int:edition_id>/<action>")
@require_role("editor")
def change(edition_id: int, action: str) -> BaseResponse:
    review = context().core.review
    target, who = str(edition_id), _actor()
    try:
        if action == "note":
            review.note(target, request.form.get("note", ""), who)
            message = "Note saved."
        elif action == "approve":
            view = review.approve(target, who)
            message = "Approved: " + view.state + "."
        elif action in STORY_ACTIONS:
            story = _story_id()
            if action == "drop":
                review.drop(target, story, who)
            elif action == "pin":
                review.pin(target, story, who)
            elif action == "move":
                raw = request.form.get("position", "")
                if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
                    raise DigestError("the place must be a number")
                review.move(target, story, int(raw), who)
            else:
                review.teaser(target, story, request.form.get("teaser", ""), who)
            message = f"Story {story}: {action} done."
        else:
            abort(404)
    except NotFoundError:
        abort(404)
    except DigestError as exc:
        flash(f"Not changed: {exc}", "error")
        return _back(edition_id)
    flash(message, "ok")
    return _back(edition_id)
