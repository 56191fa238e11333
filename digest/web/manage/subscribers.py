"""Subscribers: search, add, import a CSV (with the row report), export a list as CSV, one
person's history (deliveries, bounces, consent), and forgetting a person after a confirmation."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, flash, request
from werkzeug.wrappers import Response as BaseResponse

from digest.errors import DigestError, InputError, NotFoundError
from digest.service import catalog as catalog_rules
from digest.web import context
from digest.web.auth import require_role
from digest.web.manage.common import bp, field, page, refused, to

__all__ = [
    "add_subscriber",
    "confirm_forget",
    "export_subscribers",
    "forget",
    "import_subscribers",
    "subscriber",
    "subscribers",
]


@bp.get("/subscribers")
@require_role("operator")
def subscribers() -> tuple[str, int]:
    catalog = context().core.catalog
    query = request.args.get("q", "")[:320]
    try:
        people = catalog.find_subscribers(query, limit=200)
        problem = None
    except DigestError as exc:
        people, problem = [], str(exc)
    return page(
        "subscribers.html",
        query=query,
        people=people,
        problem=problem,
        lists=catalog.lists(),
    )


@bp.post("/subscribers")
@require_role("operator")
def add_subscriber() -> BaseResponse:
    try:
        person, added = context().core.catalog.add_subscriber(
            field("list"), field("email"), field("name")
        )
    except DigestError as exc:
        return refused(exc, "manage.subscribers")
    flash(f"{person.email} {'subscribed to' if added else 'was already on'} {field('list')}.", "ok")
    return to("manage.subscriber", subscriber_id=person.id)


@bp.post("/subscribers/import")
@require_role("operator")
def import_subscribers() -> tuple[str, int] | BaseResponse:
    upload = request.files.get("csv")
    try:
        if upload is None or not upload.filename:
            raise InputError("choose a CSV file to import")
        report = context().core.catalog.import_subscribers(
            field("list"), upload.stream, label=upload.filename[:100]
        )
    except DigestError as exc:
        return refused(exc, "manage.subscribers")
    return page("import-report.html", report=report, list_slug=field("list"))


@bp.get("/subscribers/export")
@require_role("operator")
def export_subscribers() -> Response:
    slug = request.args.get("list", "")[:100]
    catalog = context().core.catalog
    try:
        slug = catalog.get_list(slug).slug  # an empty or unknown list is a 404, not everyone
        people = catalog.subscribers(slug)
    except DigestError:
        abort(404)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "status", "subscribed_at"])
    for person in people:
        writer.writerow(
            [
                # A spreadsheet would run a name like =HYPERLINK(...) as a formula.
                catalog_rules.csv_safe_cell(person.email),
                catalog_rules.csv_safe_cell(person.name),
                person.state_on(slug),
                person.lists[slug].created_at.isoformat(timespec="seconds"),
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{slug}-subscribers.csv"'},
    )


@bp.get("/subscribers/<int:subscriber_id>")
@require_role("operator")
def subscriber(subscriber_id: int) -> tuple[str, int]:
    catalog = context().core.catalog
    try:
        person = catalog.subscriber(subscriber_id)
        history = catalog.subscriber_history(subscriber_id)
    except NotFoundError:
        abort(404)
    return page("subscriber.html", person=person, history=history)


@bp.get("/subscribers/<int:subscriber_id>/forget")
@require_role("operator")
def confirm_forget(subscriber_id: int) -> tuple[str, int]:
    try:
        person = context().core.catalog.subscriber(subscriber_id)
    except NotFoundError:
        abort(404)
    return page("forget.html", person=person)


@bp.post("/subscribers/<int:subscriber_id>/forget")
@require_role("operator")
def forget(subscriber_id: int) -> BaseResponse:
    core = context().core
    try:
        person = core.catalog.subscriber(subscriber_id)
    except NotFoundError:
        abort(404)
    if field("confirm") != person.email:
        flash("Not forgotten: type the address exactly to confirm.", "error")
        return to("manage.confirm_forget", subscriber_id=subscriber_id)
    try:
        report = core.inbox.forget(person.email)
    except DigestError as exc:
        return refused(exc, "manage.subscribers")
    flash(
        f"Forgotten: {report.subscriptions} subscriptions and {report.deliveries} delivery "
        "records kept without personal data; the address stays suppressed (as a hash).",
        "ok",
    )
    return to("manage.subscribers")
