"""The API's sections, sources, lists and subscribers (with CSV import)."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from digest.edition.select import zone
from digest.errors import InputError, NotFoundError
from digest.ingest.fetch import is_http_url
from digest.service import catalog
from digest.store.models import (
    MailingList,
    Section,
    Source,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from digest.web import context
from digest.web.api.base import (
    bp,
    json_body,
    page_args,
    required_field,
    text_field,
    utc_iso,
)

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
    data = json_body()
    with context().db.session() as session:
        section, created = catalog.add_section(
            session, required_field(data, "slug"), required_field(data, "name")
        )
        return jsonify(_section(section)), 201 if created else 200


def _source(source: Source, section_slug: str) -> dict[str, Any]:
    return {
        "id": source.id,
        "url": source.url,
        "name": source.name,
        "section": section_slug,
        "last_fetched_at": utc_iso(source.last_fetched_at),
        "last_status": source.last_status,
        "last_found": source.last_found,
        "last_new": source.last_new,
        "consecutive_errors": source.consecutive_errors,
        "last_error": source.last_error,
        "next_fetch_at": utc_iso(source.next_fetch_at),
    }


@bp.get("/sources")
def sources_index() -> Response:
    with context().db.session() as session:
        rows = session.execute(select(Source, Section.slug).join(Section).order_by(Source.id))
        return jsonify([_source(source, slug) for source, slug in rows])


@bp.post("/sources")
def sources_create() -> tuple[Response, int]:
    data = json_body()
    url = required_field(data, "url").strip()
    # The CLI also takes files on the server's disk; over the network that would let a token
    # holder read local files as feeds, so only web feeds are accepted here.
    if not is_http_url(url):
        raise InputError("url must be an http:// or https:// feed address")
    section_slug = required_field(data, "section")
    with context().db.session() as session:
        source, created = catalog.add_source(session, url, section_slug, text_field(data, "name"))
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
    data = json_body()
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
            required_field(data, "slug"),
            required_field(data, "name"),
            [s.strip() for s in raw_sections if s.strip()],
            timezone=text_field(data, "timezone"),
            send_at=text_field(data, "send_at"),
            per_section=per_section,
            from_address=text_field(data, "from_address"),
            from_name=text_field(data, "from_name"),
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
            "confirmed_at": utc_iso(subscription.confirmed_at),
        }
    return [
        {
            "id": p.id,
            "email": p.email,
            "name": p.name,
            "status": p.status.value,
            "timezone": p.timezone,
            "created_at": utc_iso(p.created_at),
            "lists": by_subscriber.get(p.id, {}),
        }
        for p in people
    ]


@bp.get("/subscribers")
def subscribers_index() -> Response:
    limit, offset = page_args()
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
    data = json_body()
    timezone = text_field(data, "timezone")
    if timezone is not None:
        zone(catalog.check_text(timezone, "'timezone'", 64))
    # catalog.subscribe shortens a long name and drops controls; the API refuses them instead,
    # like every other text field, so a client learns its input was not stored as sent.
    catalog.check_text(text_field(data, "name") or "", "'name'", 200)
    with context().db.session() as session:
        mailing_list = catalog.get_list(session, required_field(data, "list"))
        subscriber, added = catalog.subscribe(
            session,
            mailing_list,
            required_field(data, "email"),
            text_field(data, "name") or "",
            source="api",
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
def subscribers_import() -> tuple[Response, int]:
    """A CSV with an ``email`` and optional ``name`` column, as the request body or as the
    ``file`` field of a form; good rows are imported, bad ones reported by line.

    Any bad row answers 422, as the CLI exits 1, so a script notices; the good rows are
    kept all the same, and sending the corrected file again adds only what is new."""
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
    # The CLI's import, with its checks and messages, reading the upload as a stream.
    with context().db.session() as session:
        mailing_list = catalog.get_list(session, slug)
        report = catalog.import_subscribers(
            session, mailing_list, io.BytesIO(content), source_label=name
        )
    return jsonify(
        {
            "added": report.added,
            "already": report.already,
            "errors": [{"line": e.line, "reason": e.reason} for e in report.errors],
        }
    ), 422 if report.errors else 200
