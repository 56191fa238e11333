"""The API's editions: listing, progress, preview, send, test copy, pause, resume, cancel,
retry-failed, retry-now, include-late, rebuild and drop."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from digest.errors import InputError
from digest.service.core import parse_day
from digest.service.dispatch import Dispatched
from digest.service.summary import EditionSummary
from digest.web import context
from digest.web.api.base import (
    bp,
    json_body,
    page_args,
    required_field,
    text_field,
    utc_iso,
)

# -- editions ----------------------------------------------------------------------------------


def _edition(summary: EditionSummary) -> dict[str, Any]:
    return {
        "id": summary.id,
        "list": summary.list_slug,
        "date": summary.day.isoformat(),
        "status": summary.status,
        # The operator's name for it: scheduled, sending, paused, done, failed, cancelled, empty.
        "state": summary.label,
        "reason": summary.reason,
        "subject": summary.subject,
        "created_at": utc_iso(summary.created_at),
        "completed_at": utc_iso(summary.completed_at),
        "counts": summary.counts,
        "total": summary.total,
        "done": summary.total - summary.open,
        "held": summary.held,
        "late": summary.late,
        "next_retry_at": utc_iso(summary.next_retry),
        # On a broker, once its due rows have gone unclaimed too long: since when, in words.
        "waiting_since": utc_iso(summary.waiting_since),
        "waiting": summary.waiting,
        "unanswered": summary.unanswered,
    }


def _edition_by_id(edition_id: int) -> dict[str, Any]:
    return _edition(context().core.summary(edition_id))


@bp.get("/editions")
def editions_index() -> Response:
    limit, offset = page_args()
    summaries = context().core.overview(
        limit=limit, offset=offset, list_slug=request.args.get("list") or None
    )
    return jsonify([_edition(summary) for summary in summaries])


@bp.get("/editions/<int:edition_id>")
def editions_show(edition_id: int) -> Response:
    return jsonify(_edition_by_id(edition_id))


@bp.get("/editions/preview")
def editions_preview() -> Response:
    """The HTML of a list's edition of a day (stored if built, else what building would choose),
    with sample links in place of anyone's personal ones."""
    slug = request.args.get("list")
    if not slug:
        raise InputError("'list' is required (?list=SLUG)")
    core = context().core
    draft, _ = core.draft(slug, parse_day(request.args.get("date")))
    response = Response(core.preview_html(draft), mimetype="text/html")
    # Email HTML runs no scripts of ours; a sandbox keeps it from acting as this site if
    # someone opens the URL directly.
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "frame-ancestors 'self'"
    )
    return response


def _sending(dispatched: Dispatched | None) -> dict[str, Any]:
    """How the rows went on: "queued" (batches for the workers), "background" (a thread of
    the web process), "in-process", or "nothing"."""
    if dispatched is None:
        return {"sending": "nothing", "batches": 0}
    return {"sending": dispatched.mode, "batches": dispatched.batches}


@bp.post("/editions/send")
def editions_send() -> tuple[Response, int]:
    """Build the list's edition and send it to everyone who does not have it yet: 202 while it
    goes out (to the workers, or a thread here); a second call sends nobody twice."""
    data = json_body()
    ctx = context()
    start = ctx.core.start(
        required_field(data, "list"),
        parse_day(text_field(data, "date")),
        send_early=_flag(data, "send_early"),
        include_late=_flag(data, "include_late"),
    )
    edition = _edition_by_id(start.edition_id)
    edition.update(
        created=start.created,
        late=start.late,
        included=start.included,
        **_sending(start.dispatched),
    )
    return jsonify(edition), 202 if start.sending else 200


@bp.post("/editions/test")
def editions_test_list() -> Response:
    """A test copy of a list's edition of a day (built or not), as `digest send --to` sends."""
    data = json_body()
    core = context().core
    draft, _ = core.draft(required_field(data, "list"), parse_day(text_field(data, "date")))
    address, detail = core.send_test(draft, required_field(data, "to"))
    return jsonify({"sent_to": address, "detail": detail})


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{key!r} must be true or false")
    return value


@bp.post("/editions/<int:edition_id>/test")
def editions_test(edition_id: int) -> Response:
    data = json_body()
    core = context().core
    draft = core.edition_draft(edition_id)
    address, detail = core.send_test(draft, required_field(data, "to"))
    return jsonify({"sent_to": address, "detail": detail})


@bp.post("/editions/<int:edition_id>/pause")
def editions_pause(edition_id: int) -> Response:
    ctx = context()
    ctx.core.pause(edition_id)
    return jsonify(_edition_by_id(edition_id))


@bp.post("/editions/<int:edition_id>/cancel")
def editions_cancel(edition_id: int) -> Response:
    ctx = context()
    skipped = ctx.core.cancel(edition_id)
    return jsonify({**_edition_by_id(edition_id), "skipped_now": skipped})


@bp.post("/editions/<int:edition_id>/resume")
def editions_resume(edition_id: int) -> tuple[Response, int]:
    """Continue a paused edition from where it stopped, on the workers or a thread here."""
    ctx = context()
    dispatched = ctx.core.resume(edition_id)
    edition = _edition_by_id(edition_id)
    return jsonify({**edition, **_sending(dispatched)}), 202


@bp.post("/editions/<int:edition_id>/retry-failed")
def editions_retry_failed(edition_id: int) -> tuple[Response, int]:
    """Queue the failed rows again (only those) and send them."""
    ctx = context()
    count, dispatched = ctx.core.retry_failed(edition_id)
    edition = _edition_by_id(edition_id)
    edition.update(requeued=count, **_sending(dispatched))
    return jsonify(edition), 202 if count else 200


@bp.post("/editions/<int:edition_id>/retry-now")
def editions_retry_now(edition_id: int) -> tuple[Response, int]:
    """Try the deferred rows now instead of at their next try (attempts still count), and
    send them: 202 while they go out, 200 when nobody was deferred (or it is paused)."""
    count, dispatched = context().core.retry_now(edition_id)
    edition = _edition_by_id(edition_id)
    edition.update(retried=count, **_sending(dispatched))
    return jsonify(edition), 202 if dispatched else 200


@bp.post("/editions/<int:edition_id>/include-late")
def editions_include_late(edition_id: int) -> tuple[Response, int]:
    """Add those who subscribed since the edition was built, once each, and send to them."""
    ctx = context()
    count = ctx.core.include_late(edition_id)
    dispatched = (
        ctx.core.continue_send(edition_id) if count and ctx.core.is_sending(edition_id) else None
    )
    edition = _edition_by_id(edition_id)
    edition.update(included=count, **_sending(dispatched))
    return jsonify(edition), 202 if dispatched else 200


@bp.post("/editions/<int:edition_id>/rebuild")
def editions_rebuild(edition_id: int) -> tuple[Response, int]:
    """Build the day of an edition nobody has received again, and send it (400 once anyone
    was sent it, or tried)."""
    data = request.get_json(silent=True) or {}
    ctx = context()
    start = ctx.core.rebuild_edition(edition_id, send_early=_flag(data, "send_early"))
    edition = _edition_by_id(start.edition_id)
    edition.update(replaced=edition_id, **_sending(start.dispatched))
    return jsonify(edition), 202 if start.sending else 200


@bp.delete("/editions/<int:edition_id>")
def editions_drop(edition_id: int) -> Response:
    """Delete an edition nobody has received, with its unsent rows."""
    slug, day, rows = context().core.drop_edition(edition_id)
    return jsonify({"dropped": edition_id, "list": slug, "date": day.isoformat(), "rows": rows})
