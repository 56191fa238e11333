"""Pages for subscribers: subscribe with double opt-in, confirm, one-click unsubscribe,
preferences, and the archive. Every personal page is reached through a signed token in
its URL: no login, no cookie."""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from flask import Blueprint, abort, make_response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.edition.build import stored_draft
from digest.errors import DigestError, InputError, NotFoundError, TransportError
from digest.feedback.privacy import is_forgotten, is_placeholder
from digest.ingest.text import one_line
from digest.mail.mime import simple_message
from digest.mail.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE
from digest.send.batch import mail_domain
from digest.service import catalog
from digest.store.models import (
    Edition,
    EditionStatus,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from digest.transports import Envelope, Outcome, transport_for
from digest.web import context

bp = Blueprint("public", __name__)

#: Shown on the form and stored with each sign-up as the consent given.
CONSENT_WORDING = (
    "Yes, email me {list} from {site}. I can unsubscribe at any time with the link in every email."
)
ONE_CLICK = "List-Unsubscribe=One-Click"


def _page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    settings = context().settings
    return render_template(template, site_name=settings.site_name, **values), status


def _message(title: str, text: str, status: int = 200) -> tuple[str, int]:
    return _page("web/message.html", status, title=title, text=text)


def _stop(title: str, text: str, status: int) -> NoReturn:
    """End the request with a plain message page."""
    abort(make_response(*_message(title, text, status)))


def _verify(purpose: str, token: str) -> list[int]:
    """The ids a token carries; a forged, altered or expired token ends the request with a
    plain error page and changes nothing."""
    try:
        return context().tokens.verify(purpose, token)
    except InputError as exc:
        _stop("Link not valid", f"{exc}. Nothing was changed.", 400)


@bp.get("/")
def index() -> tuple[str, int]:
    with context().db.session() as session:
        lists = session.scalars(select(MailingList).order_by(MailingList.name)).all()
        return _page("web/index.html", lists=lists)


# -- subscribe and confirm -------------------------------------------------------------


@bp.route("/subscribe/<slug>", methods=["GET", "POST"])
def subscribe(slug: str) -> tuple[str, int]:
    settings = context().settings
    with context().db.session() as session:
        mailing_list = _list_or_404(session, slug)
        wording = CONSENT_WORDING.format(list=mailing_list.name, site=settings.site_name)
        form: dict[str, Any] = {"email": "", "name": "", "sections": []}
        if request.method == "GET":
            return _page(
                "web/subscribe.html", mailing_list=mailing_list, wording=wording, form=form
            )
        form = {
            "email": request.form.get("email", ""),
            "name": request.form.get("name", ""),
            "sections": request.form.getlist("sections"),
        }
        if request.form.get("website"):  # a field people never see: only bots fill it
            return _check_inbox()
        try:
            address = catalog.normalise_email(form["email"])
        except InputError as exc:
            return _page("web/subscribe.html", 400, mailing_list=mailing_list, wording=wording,
                         form=form, error=str(exc))  # fmt: skip
        if is_forgotten(session, address):
            return _check_inbox()  # store nothing, send nothing, and say nothing about why
        offered = {s.slug for s in mailing_list.sections}
        sections = [s for s in form["sections"] if s in offered] or None
        name = one_line(str(form["name"]), 200)
        subscriber, subscription = _pending_subscription(
            session, mailing_list, address, name, sections, wording
        )
        if subscription.status == SubscriptionStatus.CONFIRMED:
            return _check_inbox()  # say nothing about who is already subscribed
        session.flush()
        try:
            _send_confirmation(subscriber, mailing_list)
        except (TransportError, DigestError):
            return _message(
                "Please try again later",
                "We could not send the confirmation email just now. Nothing was lost: "
                "please submit the form again in a few minutes.",
                503,
            )
        return _check_inbox()


def _check_inbox() -> tuple[str, int]:
    return _message(
        "Check your inbox",
        "If the address is right, an email with a confirmation link is on its way. "
        "Your subscription starts when you confirm it.",
    )


def _pending_subscription(
    session: Session,
    mailing_list: MailingList,
    address: str,
    name: str,
    sections: list[str] | None,
    wording: str,
) -> tuple[Subscriber, Subscription]:
    subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        subscriber = Subscriber(email=address, name=name, status=SubscriberStatus.ACTIVE)
        session.add(subscriber)
        session.flush()
    subscription = session.scalars(
        select(Subscription).where(
            Subscription.list_id == mailing_list.id, Subscription.subscriber_id == subscriber.id
        )
    ).first()
    if subscription is None:
        subscription = Subscription(list_id=mailing_list.id, subscriber_id=subscriber.id)
        session.add(subscription)
    if subscription.status != SubscriptionStatus.CONFIRMED:
        subscription.status = SubscriptionStatus.PENDING
        subscription.sections = sections
        subscription.source = "web form"
        subscription.created_at = utcnow()
        subscription.consent_ip = request.remote_addr
        subscription.consent_text = wording
        if name and not subscriber.name:
            subscriber.name = name
    return subscriber, subscription


def _send_confirmation(subscriber: Subscriber, mailing_list: MailingList) -> None:
    ctx = context()
    settings = ctx.settings
    link = f"{settings.base_url.rstrip('/')}/confirm/" + ctx.tokens.sign(
        CONFIRM, subscriber.id, mailing_list.id
    )
    from_address = mailing_list.from_address or settings.from_address
    text = (
        f"Please confirm that you want {mailing_list.name} from {settings.site_name} "
        f"at this address:\n\n{link}\n\n"
        "If you did not ask for it, ignore this email: nothing will be sent to you.\n"
    )
    message = simple_message(
        from_name=mailing_list.from_name or settings.site_name,
        from_address=from_address,
        to_name=subscriber.name,
        to_address=subscriber.email,
        subject=f"Confirm your subscription to {mailing_list.name}",
        text=text,
        domain=mail_domain(settings, mailing_list),
    )
    with transport_for(settings) as transport:
        result = transport.send(Envelope(from_address, subscriber.email, "confirmations"), message)
    if result.outcome != Outcome.SENT:
        raise TransportError(f"confirmation refused: {result.code} {result.detail}")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    subscriber_id, list_id = _verify(CONFIRM, token)
    with context().db.session() as session:
        subscription = _subscription(session, subscriber_id, list_id)
        mailing_list = session.get_one(MailingList, list_id)
        if request.method == "GET":
            # A mail scanner that opens the link must not subscribe anyone: a person clicks.
            return _page("web/confirm.html", mailing_list=mailing_list,
                         done=subscription.status == SubscriptionStatus.CONFIRMED)  # fmt: skip
        subscription.status = SubscriptionStatus.CONFIRMED
        subscription.confirmed_at = utcnow()
        subscriber = session.get_one(Subscriber, subscriber_id)
        if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
            subscriber.status = SubscriberStatus.ACTIVE
        return _page("web/confirm.html", mailing_list=mailing_list, done=True)


# -- unsubscribe and preferences -----------------------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> tuple[str, int]:
    """GET shows a button and changes nothing (scanners prefetch links). POST unsubscribes at
    once and answers 200, with no cookie, CSRF token or redirect (RFC 8058)."""
    subscriber_id, list_id = _verify(UNSUBSCRIBE, token)
    if subscriber_id == 0:
        return _message("Test copy", "This is a test copy's link: there is nothing to change.")
    with context().db.session() as session:
        mailing_list = session.get(MailingList, list_id)
        subscriber = session.get(Subscriber, subscriber_id)
        if mailing_list is None or subscriber is None:
            return _message("Unsubscribed", "This address is not subscribed any more.")
        if request.method == "GET":
            return _page("web/unsubscribe.html", mailing_list=mailing_list, email=subscriber.email)
        everything = request.form.get("scope") == "all"
        for subscription in session.scalars(
            select(Subscription).where(Subscription.subscriber_id == subscriber_id)
        ):
            if everything or subscription.list_id == list_id:
                subscription.status = SubscriptionStatus.UNSUBSCRIBED
        if everything:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
        what = "all lists" if everything else mailing_list.name
        return _page("web/unsubscribed.html", what=what, email=subscriber.email, token=token)


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> tuple[str, int]:
    (subscriber_id,) = _verify(PREFERENCES, token)[:1]
    if subscriber_id == 0:
        return _message("Test copy", "This is a test copy's link: there is nothing to change.")
    with context().db.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or is_placeholder(subscriber.email):
            return _message("Not found", "This address is no longer in our lists.", 404)
        lists = session.scalars(select(MailingList).order_by(MailingList.name)).all()
        mine = {
            s.list_id: s
            for s in session.scalars(
                select(Subscription).where(Subscription.subscriber_id == subscriber_id)
            )
        }
        saved = False
        if request.method == "POST":
            _save_preferences(session, subscriber, lists, mine)
            saved = True
        rows = [
            {
                "list": lst,
                "subscribed": lst.id in mine
                and mine[lst.id].status == SubscriptionStatus.CONFIRMED,
                "chosen": set(mine[lst.id].sections or []) if lst.id in mine else set(),
            }
            for lst in lists
        ]
        return _page("web/preferences.html", subscriber=subscriber, rows=rows, saved=saved)


def _save_preferences(
    session: Session,
    subscriber: Subscriber,
    lists: list[MailingList] | Any,
    mine: dict[int, Subscription],
) -> None:
    """Apply the form: name, which lists, which sections of each. Holding the link proves the
    address is theirs, so joining a list here needs no second confirmation."""
    subscriber.name = one_line(request.form.get("name", subscriber.name), 200)
    now = utcnow()
    for lst in lists:
        wanted = request.form.get(f"list-{lst.id}") == "on"
        offered = {s.slug for s in lst.sections}
        sections = [s for s in request.form.getlist(f"sections-{lst.id}") if s in offered]
        subscription = mine.get(lst.id)
        if wanted:
            if subscription is None:
                subscription = Subscription(list_id=lst.id, subscriber_id=subscriber.id,
                                            source="preferences page", created_at=now)  # fmt: skip
                session.add(subscription)
                mine[lst.id] = subscription
            if subscription.status != SubscriptionStatus.CONFIRMED:
                subscription.confirmed_at = now
            subscription.status = SubscriptionStatus.CONFIRMED
            # All or none ticked means "everything": a new section then reaches them too.
            subscription.sections = sections if 0 < len(sections) < len(offered) else None
            if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
                subscriber.status = SubscriberStatus.ACTIVE
        elif subscription is not None:
            subscription.status = SubscriptionStatus.UNSUBSCRIBED
    session.flush()


# -- the archive ----------------------------------------------------------------------------


@bp.get("/archive/<slug>/")
def archive_index(slug: str) -> tuple[str, int]:
    with context().db.session() as session:
        mailing_list = _list_or_404(session, slug)
        editions = session.scalars(
            select(Edition)
            .where(Edition.list_id == mailing_list.id, Edition.status.in_(_PUBLISHED))
            .order_by(Edition.edition_date.desc())
            .limit(365)
        ).all()
        return _page("web/archive.html", mailing_list=mailing_list, editions=editions)


@bp.get("/archive/<slug>/<day>")
def archive_edition(slug: str, day: str) -> tuple[str, int]:
    """One edition as subscribers saw it, without anyone's personal links."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        abort(404)
    settings = context().settings
    with context().db.session() as session:
        mailing_list = _list_or_404(session, slug)
        edition = session.scalars(
            select(Edition).where(
                Edition.list_id == mailing_list.id,
                Edition.edition_date == date,
                Edition.status.in_(_PUBLISHED),
            )
        ).first()
        if edition is None:
            _stop("Not found", f"There is no {mailing_list.name} of {day}.", 404)
        draft = stored_draft(session, settings, edition)
        template = context().archive.template_for(edition.id, draft, None)
    public = f"{settings.base_url.rstrip('/')}/subscribe/{slug}"
    return template.html.fill({"unsubscribe": public, "preferences": public}), 200


_PUBLISHED = (EditionStatus.READY, EditionStatus.DONE, EditionStatus.PAUSED)


def _list_or_404(session: Session, slug: str) -> MailingList:
    try:
        return catalog.get_list(session, slug)
    except NotFoundError:
        _stop("Not found", "There is no such list.", 404)


def _subscription(session: Session, subscriber_id: int, list_id: int) -> Subscription:
    found = session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id
        )
    ).first()
    if found is None:
        _stop("Not found", "This subscription no longer exists.", 404)
    return found
