"""The operator's JSON API under ``/api/``: lists, sections, sources, subscribers (with CSV
import) and editions (preview, send, test copy, pause, resume, cancel, retry-failed, progress).

Every route but ``/api/openapi.json`` needs ``Authorization: Bearer <token>`` (tokens come
from ``digest tokens create``). A session cookie never authenticates here, so a page in the
operator's browser cannot make calls on their behalf (no CSRF to defend against).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.utils import secure_filename

from digest.edition import control, ledger
from digest.edition.select import zone
from digest.errors import DigestError, InputError, NotFoundError, TransportError
from digest.service import catalog
from digest.service import core as operations
from digest.store.models import (
    Edition,
    MailingList,
    Section,
    Source,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from digest.web import context
from digest.web.auth import TokenRefused, check_token

bp = Blueprint("api", __name__, url_prefix="/api")

#: Most rows one GET returns; ``limit`` asks for fewer, ``offset`` pages on.
MAX_PAGE = 1000


# -- authentication and errors -------------------------------------------------------------


def _error(status: int, message: str, **headers: str) -> Response:
    # One line, whatever the exception said: clients log it, people read it.
    response = jsonify({"error": " ".join(message.split())})
    response.status_code = status
    response.headers.update(headers)
    return response


def _unauthorized(reason: str) -> Response:
    # RFC 6750 §3: say which scheme is wanted; "invalid_token" only when one was presented.
    challenge = 'Bearer realm="digest"'
    if reason != "missing bearer token":
        challenge += ', error="invalid_token"'
    return _error(401, reason, **{"WWW-Authenticate": challenge})


@bp.before_request
def require_token() -> Response | None:
    if request.endpoint == "api.openapi":
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _unauthorized("missing bearer token")
    try:
        with context().db.session() as session:
            check_token(session, token)
    except TokenRefused as exc:
        return _unauthorized(str(exc))
    return None


@bp.errorhandler(NotFoundError)
def not_found(exc: NotFoundError) -> Response:
    return _error(404, str(exc))


@bp.errorhandler(TransportError)
def transport_failed(exc: TransportError) -> Response:
    return _error(503, f"mail transport: {exc}")


@bp.errorhandler(DigestError)
def bad_input(exc: DigestError) -> Response:
    return _error(400, str(exc))


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response | HTTPException:
    """Unknown routes, wrong methods and oversized bodies under /api/ answer JSON too; the
    rest of the site keeps its own pages."""
    if not request.path.startswith("/api/"):
        return exc
    return _error(exc.code or 500, exc.description or exc.name)


# -- request helpers -------------------------------------------------------------------------


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InputError("the request body must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InputError(f"{key!r} is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InputError(f"{key!r} must be a string")
    return str(value)


def _required(data: dict[str, Any], key: str) -> str:
    value = _text(data, key, required=True)
    assert value is not None
    return value


def _page() -> tuple[int, int]:
    try:
        limit = int(request.args.get("limit", 100))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        raise InputError("limit and offset must be whole numbers") from exc
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InputError(f"limit must be 1 to {MAX_PAGE} and offset at least 0")
    return limit, offset


def _when(value: dt.datetime | None) -> str | None:
    # Stored as naive UTC: say so, or clients would read it as their local time.
    return value.isoformat(timespec="seconds") + "Z" if value else None


# -- sections, sources, lists ------------------------------------------------------------------


def _section(section: Section) -> dict[str, Any]:
    return {"id": section.id, "slug": section.slug, "name": section.name}


@bp.get("/sections")
def sections_index() -> Response:
    with context().db.session() as session:
        rows = session.scalars(select(Section).order_by(Section.slug))
        return jsonify([_section(s) for s in rows])


@bp.post("/sections")
def sections_create() -> tuple[Response, int]:
    data = _body()
    with context().db.session() as session:
        section, created = catalog.add_section(
            session, _required(data, "slug"), _required(data, "name")
        )
        return jsonify(_section(section)), 201 if created else 200


def _source(source: Source, section_slug: str) -> dict[str, Any]:
    return {
        "id": source.id,
        "url": source.url,
        "name": source.name,
        "section": section_slug,
        "last_fetched_at": _when(source.last_fetched_at),
        "last_status": source.last_status,
        "last_found": source.last_found,
        "last_new": source.last_new,
        "consecutive_errors": source.consecutive_errors,
        "last_error": source.last_error,
        "next_fetch_at": _when(source.next_fetch_at),
    }


@bp.get("/sources")
def sources_index() -> Response:
    with context().db.session() as session:
        rows = session.execute(select(Source, Section.slug).join(Section).order_by(Source.id))
        return jsonify([_source(source, slug) for source, slug in rows])


@bp.post("/sources")
def sources_create() -> tuple[Response, int]:
    data = _body()
    url = _required(data, "url").strip()
    # The CLI also takes files on the server's disk; over the network that would let a token
    # holder read local files as feeds, so only web feeds are accepted here.
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise InputError("url must be an http:// or https:// feed address")
    section_slug = _required(data, "section")
    with context().db.session() as session:
        source, created = catalog.add_source(session, url, section_slug, _text(data, "name"))
        return jsonify(_source(source, section_slug)), 201 if created else 200


def _subscriber_counts(session: Session) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(Subscription.list_id, Subscription.status, func.count()).group_by(
            Subscription.list_id, Subscription.status
        )
    )
    for list_id, status, count in rows:
        counts.setdefault(list_id, {s.value: 0 for s in SubscriptionStatus})[status.value] = count
    return counts


def _list(mailing_list: MailingList, counts: dict[str, int] | None) -> dict[str, Any]:
    return {
        "id": mailing_list.id,
        "slug": mailing_list.slug,
        "name": mailing_list.name,
        "sections": [s.slug for s in mailing_list.sections],
        "timezone": mailing_list.timezone,
        "send_at": mailing_list.send_at,
        "per_section": mailing_list.per_section,
        "from_address": mailing_list.from_address,
        "from_name": mailing_list.from_name,
        "subscribers": counts or {s.value: 0 for s in SubscriptionStatus},
    }


@bp.get("/lists")
def lists_index() -> Response:
    with context().db.session() as session:
        counts = _subscriber_counts(session)
        rows = session.scalars(select(MailingList).order_by(MailingList.slug))
        return jsonify([_list(m, counts.get(m.id)) for m in rows])


@bp.post("/lists")
def lists_create() -> tuple[Response, int]:
    data = _body()
    raw_sections = data.get("sections")
    if isinstance(raw_sections, str):
        raw_sections = raw_sections.split(",")
    if not isinstance(raw_sections, list) or not all(isinstance(s, str) for s in raw_sections):
        raise InputError("'sections' must be a list of section slugs")
    per_section = data.get("per_section")
    if per_section is not None and (
        not isinstance(per_section, int) or isinstance(per_section, bool)
    ):
        raise InputError("'per_section' must be a whole number")
    with context().db.session() as session:
        mailing_list, created = catalog.add_list(
            session,
            _required(data, "slug"),
            _required(data, "name"),
            [s.strip() for s in raw_sections if s.strip()],
            timezone=_text(data, "timezone"),
            send_at=_text(data, "send_at"),
            per_section=per_section,
            from_address=_text(data, "from_address"),
            from_name=_text(data, "from_name"),
        )
        counts = _subscriber_counts(session).get(mailing_list.id)
        return jsonify(_list(mailing_list, counts)), 201 if created else 200


# -- subscribers -------------------------------------------------------------------------------


def _subscribers(session: Session, people: list[Subscriber]) -> list[dict[str, Any]]:
    """Each subscriber with the state of each of their subscriptions, in two queries."""
    by_subscriber: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        select(Subscription, MailingList.slug)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id.in_([p.id for p in people]))
    )
    for subscription, slug in rows:
        by_subscriber.setdefault(subscription.subscriber_id, {})[slug] = {
            "status": subscription.status.value,
            "sections": subscription.sections,
            "source": subscription.source,
            "confirmed_at": _when(subscription.confirmed_at),
        }
    return [
        {
            "id": p.id,
            "email": p.email,
            "name": p.name,
            "status": p.status.value,
            "timezone": p.timezone,
            "created_at": _when(p.created_at),
            "lists": by_subscriber.get(p.id, {}),
        }
        for p in people
    ]


@bp.get("/subscribers")
def subscribers_index() -> Response:
    limit, offset = _page()
    with context().db.session() as session:
        query = select(Subscriber).order_by(Subscriber.email)
        if slug := request.args.get("list"):
            mailing_list = catalog.get_list(session, slug)
            query = query.join(Subscription, Subscription.subscriber_id == Subscriber.id).where(
                Subscription.list_id == mailing_list.id
            )
        people = list(session.scalars(query.limit(limit).offset(offset)))
        return jsonify(_subscribers(session, people))


@bp.post("/subscribers")
def subscribers_create() -> tuple[Response, int]:
    data = _body()
    timezone = _text(data, "timezone")
    if timezone is not None:
        zone(timezone)
    with context().db.session() as session:
        mailing_list = catalog.get_list(session, _required(data, "list"))
        subscriber, added = catalog.subscribe(
            session, mailing_list, _required(data, "email"), _text(data, "name") or "", source="api"
        )
        if timezone is not None:
            subscriber.timezone = timezone
        (found,) = _subscribers(session, [subscriber])
        return jsonify({**found, "added": added}), 201 if added else 200


@bp.delete("/subscribers/<int:subscriber_id>")
def subscribers_delete(subscriber_id: int) -> Response:
    """Unsubscribe from every list. The record stays: it is the proof of what they asked for,
    and it keeps a later import from subscribing them again unnoticed."""
    with context().db.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            raise NotFoundError("subscriber", subscriber_id)
        for subscription in session.scalars(
            select(Subscription).where(Subscription.subscriber_id == subscriber_id)
        ):
            subscription.status = SubscriptionStatus.UNSUBSCRIBED
        if subscriber.status == SubscriberStatus.ACTIVE:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
        session.flush()
        (found,) = _subscribers(session, [subscriber])
        return jsonify(found)


@bp.post("/subscribers/import")
def subscribers_import() -> Response:
    """A CSV with an ``email`` and optional ``name`` column, as the request body or as the
    ``file`` field of a form; good rows are imported, bad ones reported by line."""
    slug = request.args.get("list") or request.form.get("list")
    if not slug:
        raise InputError("'list' is required (?list=SLUG)")
    upload = request.files.get("file")
    if upload is not None:
        content, filename = upload.read(), upload.filename or "upload.csv"
    else:
        content, filename = request.get_data(), "api-upload.csv"
    if not content.strip():
        raise InputError("no CSV given: send it as the body or as the form field 'file'")
    name = secure_filename(filename) or "upload.csv"
    # catalog.import_subscribers reads a file, with the CLI's exact checks and messages; the
    # upload is written to a private temporary folder so the API imports the same way.
    with tempfile.TemporaryDirectory(prefix="digest-import-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            with context().db.session() as session:
                mailing_list = catalog.get_list(session, slug)
                report = catalog.import_subscribers(session, mailing_list, path)
        except InputError as exc:
            # Its message names the temporary file; the client knows it by its own name.
            raise InputError(str(exc).replace(str(path), name)) from exc
    return jsonify(
        {
            "added": report.added,
            "already": report.already,
            "errors": [{"line": e.line, "reason": e.reason} for e in report.errors],
        }
    )


# -- editions ----------------------------------------------------------------------------------


def _edition(session: Session, edition: Edition, slug: str) -> dict[str, Any]:
    counts = ledger.counts(session, edition.id)
    total = sum(counts.values())
    open_rows = sum(counts[s.value] for s in ledger.OPEN_STATUSES)
    return {
        "id": edition.id,
        "list": slug,
        "date": edition.edition_date.isoformat(),
        "status": edition.status.value,
        "reason": edition.status_reason,
        "subject": edition.subject,
        "created_at": _when(edition.created_at),
        "completed_at": _when(edition.completed_at),
        "counts": counts,
        "total": total,
        "done": total - open_rows,
    }


def _edition_by_id(session: Session, edition_id: int) -> dict[str, Any]:
    row = session.execute(
        select(Edition, MailingList.slug).join(MailingList).where(Edition.id == edition_id)
    ).first()
    if row is None:
        raise NotFoundError("edition", edition_id)
    return _edition(session, row[0], row[1])


@bp.get("/editions")
def editions_index() -> Response:
    limit, offset = _page()
    with context().db.session() as session:
        query = select(Edition, MailingList.slug).join(MailingList)
        if slug := request.args.get("list"):
            query = query.where(MailingList.id == catalog.get_list(session, slug).id)
        rows = session.execute(query.order_by(Edition.id.desc()).limit(limit).offset(offset))
        return jsonify([_edition(session, edition, slug) for edition, slug in rows])


@bp.get("/editions/<int:edition_id>")
def editions_show(edition_id: int) -> Response:
    with context().db.session() as session:
        return jsonify(_edition_by_id(session, edition_id))


@bp.get("/editions/preview")
def editions_preview() -> Response:
    """The HTML of a list's edition of a day (stored if built, else what building would choose),
    with sample links in place of anyone's personal ones."""
    slug = request.args.get("list")
    if not slug:
        raise InputError("'list' is required (?list=SLUG)")
    ctx = context()
    draft, _ = operations.edition_draft(
        ctx.db, ctx.settings, slug, operations.parse_day(request.args.get("date"))
    )
    response = Response(operations.preview_html(ctx.settings, draft), mimetype="text/html")
    # Email HTML runs no scripts of ours; a sandbox keeps it from acting as this site if
    # someone opens the URL directly.
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "frame-ancestors 'self'"
    )
    return response


def _background() -> operations.BackgroundSends:
    sends: operations.BackgroundSends = current_app.extensions.setdefault(
        "digest_background_sends", operations.BackgroundSends()
    )
    return sends


@bp.post("/editions/send")
def editions_send() -> tuple[Response, int]:
    """Build the list's edition and send it to everyone who does not have it yet: 202 while it
    goes out (to the workers, or a thread here); a second call sends nobody twice."""
    data = _body()
    ctx = context()
    start = operations.start_send(
        ctx.db,
        ctx.settings,
        _required(data, "list"),
        operations.parse_day(_text(data, "date")),
        _background(),
    )
    with ctx.db.session() as session:
        edition = _edition_by_id(session, start.edition_id)
    edition.update(created=start.created, sending=start.mode, batches=start.batches)
    return jsonify(edition), 202 if start.sending else 200


@bp.post("/editions/<int:edition_id>/test")
def editions_test(edition_id: int) -> Response:
    data = _body()
    ctx = context()
    draft = operations.edition_as_draft(ctx.db, ctx.settings, edition_id)
    address, detail = operations.send_test_copy(ctx.settings, draft, _required(data, "to"))
    return jsonify({"sent_to": address, "detail": detail})


@bp.post("/editions/<int:edition_id>/pause")
def editions_pause(edition_id: int) -> Response:
    with context().db.session() as session:
        control.pause(session, edition_id)
        session.flush()
        return jsonify(_edition_by_id(session, edition_id))


@bp.post("/editions/<int:edition_id>/cancel")
def editions_cancel(edition_id: int) -> Response:
    with context().db.session() as session:
        _, skipped = control.cancel(session, edition_id)
        session.flush()
        return jsonify({**_edition_by_id(session, edition_id), "skipped_now": skipped})


@bp.post("/editions/<int:edition_id>/resume")
def editions_resume(edition_id: int) -> tuple[Response, int]:
    """Continue a paused edition from where it stopped, on the workers or a thread here."""
    ctx = context()
    with ctx.db.session() as session:
        control.resume(session, edition_id)
    mode, batches = operations.continue_send(ctx.db, ctx.settings, edition_id, _background())
    with ctx.db.session() as session:
        edition = _edition_by_id(session, edition_id)
    return jsonify({**edition, "sending": mode, "batches": batches}), 202


@bp.post("/editions/<int:edition_id>/retry-failed")
def editions_retry_failed(edition_id: int) -> tuple[Response, int]:
    """Queue the failed rows again (only those) and send them."""
    ctx = context()
    with ctx.db.session() as session:
        _, count = control.retry_failed(session, edition_id)
    mode, batches = "nothing", 0
    if count:
        mode, batches = operations.continue_send(ctx.db, ctx.settings, edition_id, _background())
    with ctx.db.session() as session:
        edition = _edition_by_id(session, edition_id)
    edition.update(requeued=count, sending=mode, batches=batches)
    return jsonify(edition), 202 if count else 200


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
        },
    }
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
                    "Import a CSV (columns email,name): added, already, errors by line",
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
            "get": _op("One edition: status, reason and counts", params=("edition_id",)),
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
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Error": {
                "description": "bad input (400) or unknown object (404)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "Unauthorized": {
                "description": "no token, an unknown one, or a revoked one",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
        "schemas": {
            "Error": _object(["error"], error="string"),
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
            ),
            "NewSubscriber": _object(
                ["email", "list"], email="string", name="string", list="string", timezone="string"
            ),
            "Send": _object(["list"], list="string", date="string"),
        },
    },
}


@bp.get("/openapi.json")
def openapi() -> Response:
    """Public, so tools can read it before anyone has a token; it holds no data."""
    return jsonify(OPENAPI)
