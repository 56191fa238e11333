"""The API's sections, sources, lists and subscribers (with CSV import)."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, jsonify, request
from werkzeug.utils import secure_filename

from digest.errors import InputError
from digest.service.catalog.validation import check_text, is_http_url
from digest.service.catalog.views import ListView, SectionView, SourceView, SubscriberView
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


def _section(section: SectionView) -> dict[str, Any]:
    return {"id": section.id, "slug": section.slug, "name": section.name}


@bp.get("/sections")
def sections_index() -> Response:
    return jsonify([_section(s) for s in context().core.catalog.sections()])


@bp.post("/sections")
def sections_create() -> tuple[Response, int]:
    data = json_body()
    section, created = context().core.catalog.add_section(
        required_field(data, "slug"), required_field(data, "name")
    )
    return jsonify(_section(section)), 201 if created else 200


def _source(source: SourceView) -> dict[str, Any]:
    return {
        "id": source.id,
        "url": source.url,
        "name": source.name,
        "section": source.section_slug,
        "enabled": source.enabled,
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
    return jsonify([_source(source) for source in context().core.catalog.sources()])


@bp.post("/sources")
def sources_create() -> tuple[Response, int]:
    data = json_body()
    url = required_field(data, "url").strip()
    # The CLI also takes files on the server's disk; over the network that would let a token
    # holder read local files as feeds, so only web feeds are accepted here.
    if not is_http_url(url):
        raise InputError("url must be an http:// or https:// feed address")
    source, created = context().core.catalog.add_source(
        url, required_field(data, "section"), text_field(data, "name")
    )
    return jsonify(_source(source)), 201 if created else 200


def _list(mailing_list: ListView) -> dict[str, Any]:
    audience = mailing_list.audience
    return {
        "id": mailing_list.id,
        "slug": mailing_list.slug,
        "name": mailing_list.name,
        "sections": mailing_list.section_slugs,
        "timezone": mailing_list.timezone,
        "send_at": mailing_list.send_at,
        "per_section": mailing_list.per_section,
        "from_address": mailing_list.from_address,
        "from_name": mailing_list.from_name,
        "enabled": mailing_list.enabled,
        "public": mailing_list.public,
        "when_empty": mailing_list.when_empty,
        "utm": mailing_list.utm,
        "review": mailing_list.review,
        "review_hours": mailing_list.review_hours,
        "unreviewed": mailing_list.unreviewed,
        "subscribers": {
            "pending": audience.pending,
            "confirmed": audience.confirmed,
            "unsubscribed": audience.unsubscribed,
            # Who an edition built now would go to: confirmed, active, not suppressed.
            "eligible": audience.eligible,
        },
    }


@bp.get("/lists")
def lists_index() -> Response:
    return jsonify([_list(m) for m in context().core.catalog.lists()])


def _whole_number(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InputError(f"{key!r} must be a whole number")
    return value


@bp.post("/lists")
def lists_create() -> tuple[Response, int]:
    data = json_body()
    raw_sections = data.get("sections")
    if isinstance(raw_sections, str):
        raw_sections = raw_sections.split(",")
    if not isinstance(raw_sections, list) or not all(isinstance(s, str) for s in raw_sections):
        raise InputError("'sections' must be a list of section slugs")
    per_section = _whole_number(data, "per_section")
    review = data.get("review")
    if review is not None and not isinstance(review, bool):
        raise InputError("'review' must be true or false")
    mailing_list, created = context().core.catalog.add_list(
        required_field(data, "slug"),
        required_field(data, "name"),
        [s.strip() for s in raw_sections if s.strip()],
        timezone=text_field(data, "timezone"),
        send_at=text_field(data, "send_at"),
        per_section=per_section,
        from_address=text_field(data, "from_address"),
        from_name=text_field(data, "from_name"),
        when_empty=text_field(data, "when_empty"),
        utm=text_field(data, "utm"),
        review=review,
        review_hours=_whole_number(data, "review_hours"),
        unreviewed=text_field(data, "unreviewed"),
    )
    return jsonify(_list(mailing_list)), 201 if created else 200


# -- subscribers -------------------------------------------------------------------------------


def _subscriber(person: SubscriberView) -> dict[str, Any]:
    return {
        "id": person.id,
        "email": person.email,
        "name": person.name,
        "status": person.status,
        "timezone": person.timezone,
        "created_at": utc_iso(person.created_at),
        "lists": {
            slug: {
                "status": subscription.status,
                "sections": subscription.sections,
                "source": subscription.source,
                "confirmed_at": utc_iso(subscription.confirmed_at),
            }
            for slug, subscription in person.lists.items()
        },
    }


@bp.get("/subscribers")
def subscribers_index() -> Response:
    limit, offset = page_args()
    people = context().core.catalog.subscribers(
        request.args.get("list") or None, limit=limit, offset=offset
    )
    return jsonify([_subscriber(p) for p in people])


@bp.post("/subscribers")
def subscribers_create() -> tuple[Response, int]:
    data = json_body()
    # The catalog shortens a long name and drops controls; the API refuses them instead, like
    # every other text field, so a client learns its input was not stored as sent.
    check_text(text_field(data, "name") or "", "'name'", 200)
    subscriber, added = context().core.catalog.add_subscriber(
        required_field(data, "list"),
        required_field(data, "email"),
        text_field(data, "name") or "",
        timezone=text_field(data, "timezone"),
        source="api",
    )
    return jsonify({**_subscriber(subscriber), "added": added}), 201 if added else 200


@bp.delete("/subscribers/<int:subscriber_id>")
def subscribers_delete(subscriber_id: int) -> Response:
    """Unsubscribe from every list. The record stays: it is the proof of what they asked for,
    and it keeps a later import from subscribing them again unnoticed."""
    person = context().core.catalog.unsubscribe_everywhere(subscriber_id, source="api")
    return jsonify(_subscriber(person))


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
    report = context().core.catalog.import_subscribers(slug, io.BytesIO(content), label=name)
    return jsonify(
        {
            "added": report.added,
            "already": report.already,
            "errors": [{"line": e.line, "reason": e.reason} for e in report.errors],
        }
    ), 422 if report.errors else 200
