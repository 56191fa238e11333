"""Pages for subscribers: subscribe with double opt-in, confirm, one-click unsubscribe,
preferences, and the archive. Every personal page is reached through a signed token in
its URL: no login, no cookie."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any, NoReturn

from flask import Blueprint, Flask, abort, current_app, make_response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import audience
from digest.audience import (
    ConfirmState,
    SignUp,
    clean_name,
    confirm_state,
    is_forgotten,
    is_placeholder,
    normalise_email,
    record_signup,
    set_preferences,
)
from digest.edition.build import stored_draft
from digest.errors import DigestError, InputError, NotFoundError, TransportError
from digest.mail.mime import simple_message
from digest.mail.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE
from digest.send.batch import mail_domain
from digest.service import catalog
from digest.store.models import (
    Edition,
    EditionStatus,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from digest.transports import Envelope, Outcome, transport_for
from digest.web import context, throttle
from digest.web.after import after_response

bp = Blueprint("public", __name__)
log = logging.getLogger(__name__)

#: Shown on the form and stored with each sign-up as the consent given.
CONSENT_WORDING = (
    "Yes, email me {list} from {site}. I can unsubscribe at any time with the link in every email."
)


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
        # A hidden list keeps its own subscribe page; a disabled one sends nothing to join.
        lists = session.scalars(
            select(MailingList)
            .where(MailingList.public, MailingList.enabled)
            .order_by(MailingList.name)
        ).all()
        return _page("web/index.html", lists=lists)


# -- subscribe and confirm -------------------------------------------------------------

#: Throttle kinds (see digest.web.throttle): sign-up emails per address and list, and sign-up
#: form posts per client IP.
SIGNUP_MAIL = "signup-mail"
SIGNUP_IP = "signup-ip"


@bp.route("/subscribe/<slug>", methods=["GET", "POST"])
def subscribe(slug: str) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """GET (and HEAD) show the form. POST checks only what does not depend on who the address
    belongs to (the per-IP limit, the address's syntax), answers "check your inbox", and
    leaves the rest to after the answer: so the page, its status and its timing are the same
    for a new, a pending and an already subscribed address."""
    settings = context().settings
    with context().db.session() as session:
        mailing_list = _list_or_404(session, slug)
        wording = CONSENT_WORDING.format(list=mailing_list.name, site=settings.site_name)
        form: dict[str, Any] = {"email": "", "name": "", "sections": []}
        if request.method != "POST":
            return _page(
                "web/subscribe.html", mailing_list=mailing_list, wording=wording, form=form
            )
        per_ip = throttle.take(
            session,
            SIGNUP_IP,
            _client_ip(),
            settings.signups_per_ip_per_hour,
            dt.timedelta(hours=1),
        )
        if not per_ip.allowed:
            return _too_many_signups(per_ip.retry_after)
        form = {
            "email": request.form.get("email", ""),
            "name": request.form.get("name", ""),
            "sections": request.form.getlist("sections"),
        }
        if request.form.get("website"):  # a field people never see: only bots fill it
            return _check_inbox()
        try:
            address = normalise_email(form["email"])
        except InputError as exc:
            return _page("web/subscribe.html", 400, mailing_list=mailing_list, wording=wording,
                         form=form, error=str(exc))  # fmt: skip
        if is_forgotten(session, address):
            return _check_inbox()  # store nothing, send nothing, and say nothing about why
        offered = {s.slug for s in mailing_list.sections}
        signup = SignUp(
            list_id=mailing_list.id,
            address=address,
            name=clean_name(str(form["name"])),
            sections=[s for s in form["sections"] if s in offered] or None,
            wording=wording,
            ip=request.remote_addr,
        )
    # The queue's thread outlives the request, so it gets the app itself, not the proxy.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    after_response(app).submit(partial(_sign_up, signup))
    return _check_inbox()


def _sign_up(signup: SignUp) -> None:
    """Record the sign-up and send its one email: a confirm link, or for a subscriber a note
    that they already receive the list. At most one email per address and list in the window;
    a send that fails gives its slot back (the person will post the form again)."""
    ctx = context()
    with ctx.db.session() as session:
        mailing_list = session.get_one(MailingList, signup.list_id)
        subscriber, subscription, event = record_signup(session, signup)
        mail_key = _mail_key(signup.address, mailing_list.id)
        window = dt.timedelta(hours=ctx.settings.confirm_mail_hours)
        if not throttle.take(session, SIGNUP_MAIL, mail_key, 1, window).allowed:
            return  # the email sent within the window still holds a good link
        session.commit()  # the consent history holds the sign-up even if the mail fails
        try:
            if subscription.status == SubscriptionStatus.CONFIRMED:
                _send_already_subscribed(subscriber, mailing_list)
            else:
                _send_confirmation(subscriber, mailing_list, event.id)
        except DigestError as exc:
            throttle.give_back(session, SIGNUP_MAIL, mail_key)
            log.warning("sign-up email to subscriber %s not sent: %s", subscriber.id, exc)


def _mail_key(address: str, list_id: int) -> str:
    return f"{address}\x00{list_id}"


def _client_ip() -> str:
    # remote_addr is the direct peer: behind a reverse proxy, the proxy must be trusted
    # explicitly (werkzeug's ProxyFix) or every visitor shares the proxy's limit.
    return request.remote_addr or "unknown"


def _hours(value: float) -> str:
    shown = f"{value:g}"
    return f"{shown} hour" if shown == "1" else f"{shown} hours"


def _check_inbox() -> tuple[str, int]:
    hours = context().settings.confirm_mail_hours
    return _message(
        "Check your inbox",
        "If the address is right, an email about this subscription is on its way; a new "
        "subscription starts when you click the confirmation link in it. We send at most one "
        f"such email per address and list every {_hours(hours)}: if one reached you already, "
        "its link still works.",
    )


def _too_many_signups(retry_after: int) -> tuple[str, int, dict[str, str]]:
    minutes = max(1, (retry_after + 59) // 60)
    limit = context().settings.signups_per_ip_per_hour
    page, status = _message(
        "Too many sign-ups",
        f"This network has sent the sign-up form more than {limit} times in the last hour. "
        f"Nothing was sent or saved. Please try again in about {minutes} minutes.",
        429,
    )
    return page, status, {"Retry-After": str(retry_after)}


def _send_confirmation(subscriber: Subscriber, mailing_list: MailingList, signup_id: int) -> None:
    ctx = context()
    settings = ctx.settings
    link = f"{settings.base_url.rstrip('/')}/confirm/" + ctx.tokens.sign(
        CONFIRM, subscriber.id, mailing_list.id, signup_id
    )
    _send_notice(
        subscriber,
        mailing_list,
        f"Confirm your subscription to {mailing_list.name}",
        f"Please confirm that you want {mailing_list.name} from {settings.site_name} "
        f"at this address:\n\n{link}\n\n"
        "If you did not ask for it, ignore this email: nothing will be sent to you.\n",
    )


def _send_already_subscribed(subscriber: Subscriber, mailing_list: MailingList) -> None:
    ctx = context()
    settings = ctx.settings
    link = f"{settings.base_url.rstrip('/')}/preferences/" + ctx.tokens.sign(
        PREFERENCES, subscriber.id
    )
    _send_notice(
        subscriber,
        mailing_list,
        f"You already receive {mailing_list.name}",
        f"Someone, probably you, asked to subscribe this address to {mailing_list.name} from "
        f"{settings.site_name}. It is subscribed already, so nothing has changed.\n\n"
        f"To choose sections or lists, or to unsubscribe:\n\n{link}\n",
    )


def _send_notice(
    subscriber: Subscriber, mailing_list: MailingList, subject: str, text: str
) -> None:
    settings = context().settings
    from_address = mailing_list.from_address or settings.from_address
    message = simple_message(
        from_name=mailing_list.from_name or settings.site_name,
        from_address=from_address,
        to_name=subscriber.name,
        to_address=subscriber.email,
        subject=subject,
        text=text,
        domain=mail_domain(settings, mailing_list),
    )
    with transport_for(settings) as transport:
        result = transport.send(Envelope(from_address, subscriber.email, "confirmations"), message)
    if result.outcome != Outcome.SENT:
        raise TransportError(f"confirmation refused: {result.code} {result.detail}")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    """GET (and HEAD) show a button and change nothing; POST confirms, unless the link was
    made before the subscriber withdrew (unsubscribed from this list or from all): consent
    given once is not revived by an old link."""
    ids = _verify(CONFIRM, token)
    subscriber_id, list_id = ids[0], ids[1]
    signup_id = ids[2] if len(ids) > 2 else 0  # links mailed before sign-ups were numbered
    with context().db.session() as session:
        mailing_list = session.get(MailingList, list_id)
        state = confirm_state(session, subscriber_id, list_id, signup_id)
        if state == ConfirmState.GONE or mailing_list is None:
            _stop("Not found", "This subscription no longer exists.", 404)
        if state == ConfirmState.VOID:
            return _message(
                "Link no longer valid",
                "You unsubscribed after this link was sent, so it cannot subscribe you again. "
                f"Nothing was changed. To receive {mailing_list.name}, sign up again on its "
                "page.",
                400,
            )
        if state == ConfirmState.READY and request.method == "POST":
            state = audience.confirm(
                session, subscriber_id, list_id, signup_id, ip=request.remote_addr
            )
            return _page("web/confirm.html", mailing_list=mailing_list, done=True)
        # A mail scanner that opens the link must not subscribe anyone: a person clicks.
        done = state == ConfirmState.ALREADY
        return _page("web/confirm.html", mailing_list=mailing_list, done=done)


# -- unsubscribe and preferences -----------------------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> tuple[str, int]:
    """GET and HEAD show a button and change nothing (scanners prefetch links, some with HEAD).
    POST unsubscribes at once and answers 200, with no cookie, CSRF token or redirect
    (RFC 8058)."""
    subscriber_id, list_id = _verify(UNSUBSCRIBE, token)
    if subscriber_id == 0:
        return _message("Test copy", "This is a test copy's link: there is nothing to change.")
    with context().db.session() as session:
        mailing_list = session.get(MailingList, list_id)
        subscriber = session.get(Subscriber, subscriber_id)
        if mailing_list is None or subscriber is None:
            return _message("Unsubscribed", "This address is not subscribed any more.")
        if request.method != "POST":
            return _page("web/unsubscribe.html", mailing_list=mailing_list, email=subscriber.email)
        everything = request.form.get("scope") == "all"
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        left = audience.unsubscribe(
            session,
            subscriber_id,
            None if everything else list_id,
            source="one-click" if one_click else "unsubscribe page",
            ip=request.remote_addr,
        )
        for left_id in left:
            # Their old confirm links are void now, so signing up again must mail a new one at
            # once; this link proves the address is theirs.
            throttle.forget(session, SIGNUP_MAIL, _mail_key(subscriber.email, left_id))
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
        # A hidden list keeps its own subscribe page; a disabled one sends nothing to join.
        lists = session.scalars(
            select(MailingList)
            .where(MailingList.public, MailingList.enabled)
            .order_by(MailingList.name)
        ).all()
        mine = {
            s.list_id: s
            for s in session.scalars(
                select(Subscription).where(Subscription.subscriber_id == subscriber_id)
            )
        }
        saved = False
        if request.method == "POST":
            _save_preferences(session, subscriber, lists)
            mine = {
                s.list_id: s
                for s in session.scalars(
                    select(Subscription).where(Subscription.subscriber_id == subscriber_id)
                )
            }
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
    session: Session, subscriber: Subscriber, lists: Sequence[MailingList]
) -> None:
    """Apply the form: name, which lists, which sections of each."""
    choices = {
        lst.id: (
            request.form.get(f"list-{lst.id}") == "on",
            request.form.getlist(f"sections-{lst.id}"),
        )
        for lst in lists
    }
    set_preferences(
        session,
        subscriber,
        request.form.get("name", subscriber.name),
        choices,
        lists,
        ip=request.remote_addr,
    )


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
        _stop("Not found", "There is no edition of that date.", 404)
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
