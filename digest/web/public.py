"""Pages for subscribers: subscribe with double opt-in, confirm, one-click unsubscribe,
preferences, and the archive. Every personal page is reached through a signed token in its
URL: no login, no cookie. What each page does is ``digest.service.readers``'s; this module
turns forms into its calls and its answers into pages, in the page's language.

A page speaks its list's language (``digest.service.translations`` has the words); a page of
no list (the index, a broken link) the visitor's browser's choice among the shipped languages,
else English. Preferences speak the language of the list whose mail held the link.

GET and HEAD never change anything (mail scanners prefetch links, some with HEAD); only a
POST does.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, NoReturn, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    render_template,
    request,
)
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup

from digest.errors import InputError, NotFoundError
from digest.service import translations
from digest.service.readers import ConfirmState, Readers, SignUp, SignUpVerdict
from digest.service.translations import N_, Wording
from digest.web import context
from digest.web.after import after_response

bp = Blueprint("public", __name__)
log = logging.getLogger(__name__)

T = TypeVar("T")

#: What the page says for each reason a link's token is refused (``digest.mail.tokens``);
#: a reason not listed here is shown as "not valid".
LINK_REFUSED = {
    "this link has expired": N_("This link has expired. Nothing was changed."),
    "this link is not valid": N_("This link is not valid. Nothing was changed."),
}


# -- the page's language ------------------------------------------------------------------


@bp.record_once
def _install_translations(state: BlueprintSetupState) -> None:
    """Templates get gettext over this request's language (``_``, ``gettext``, ``ngettext``,
    ``{% trans %}``): "newstyle", so the values put into a message are escaped like any other
    output, and "trimmed", so a message wrapped over lines in a template is one line in the
    catalogue (babel.cfg extracts with the same setting)."""
    env = state.app.jinja_env
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: _wording().translations.gettext(message),
        lambda singular, plural, n: _wording().translations.ngettext(singular, plural, n),
        newstyle=True,
    )
    env.filters["isolate"] = isolate


@bp.before_request
def _visitor_language() -> None:
    """Until the page knows its list: the browser's choice among the shipped languages."""
    g.wording = translations.wording(translations.negotiate(request.accept_languages.values()))
    g.browser_language = True


@bp.after_request
def _vary(response: Response) -> Response:
    if g.get("browser_language"):
        # The same URL answers in another language to another browser: caches must know.
        response.vary.add("Accept-Language")
    return response


def _speak(language: str | None) -> None:
    """Have the page in ``language`` (its list's); None keeps the browser's choice."""
    if language is not None:
        g.wording = translations.wording(language)
        g.browser_language = False


def _wording() -> Wording:
    found: Wording | None = g.get("wording")
    return found or translations.wording(None)


def gettext(message: str, **values: object) -> Markup:
    """``message`` in the page's language, as HTML: like a template's ``_()``, the values are
    escaped unless they are markup already (``isolate``)."""
    return Markup(_wording().translations.gettext(message)) % values


def ngettext(singular: str, plural: str, n: float, **values: object) -> Markup:
    """The singular or plural of a message for ``n``, which it holds as ``%(num)s``."""
    wording = _wording()
    form = wording.plural_form(singular, plural, n)
    return Markup(form) % {"num": wording.number(n), **values}


def isolate(value: object) -> Markup:
    """Text from an operator or a feed, set apart from the sentence around it (``<bdi>``): an
    English list name in an Urdu sentence keeps its own direction, and its neighbours theirs."""
    return Markup("<bdi>{}</bdi>").format(value)


# -- pages ----------------------------------------------------------------------------------


def _readers() -> Readers:
    return context().core.readers


def _page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    settings = context().settings
    wording = _wording()
    return render_template(
        template, site_name=settings.site_name, lang=wording.tag, dir=wording.direction, **values
    ), status


def _message(title: str, text: str, status: int = 200) -> tuple[str, int]:
    return _page("web/message.html", status, title=title, text=text)


def _stop(title: str, text: str, status: int) -> NoReturn:
    """End the request with a plain message page."""
    abort(make_response(*_message(title, text, status)))


def _not_found(text: str) -> NoReturn:
    _stop(gettext("Not found"), text, 404)


def _with_link(call: Callable[[], T]) -> T:
    """Run a call that verifies a link's token: a forged, altered or expired one ends the
    request with a plain error page, and nothing is changed."""
    try:
        return call()
    except InputError as exc:
        reason = LINK_REFUSED.get(str(exc), LINK_REFUSED["this link is not valid"])
        _stop(gettext("Link not valid"), gettext(reason), 400)


def _test_copy() -> tuple[str, int]:
    return _message(
        gettext("Test copy"),
        gettext(
            "This link is in a test copy or a preview of a digest: it belongs to no "
            "subscriber, so there is nothing to change here. In a subscriber's copy it leads "
            "to their own page."
        ),
    )


@bp.get("/")
def index() -> tuple[str, int]:
    return _page("web/index.html", lists=_readers().offered_lists())


# -- subscribe and confirm -------------------------------------------------------------


@bp.route("/subscribe/<slug>", methods=["GET", "POST"])
def subscribe(slug: str) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """GET (and HEAD) show the form. POST checks only what does not depend on who the address
    belongs to (the per-IP limit, the address's syntax), answers "check your inbox", and
    leaves the rest to after the answer: so the page, its status and its timing are the same
    for a new, a pending and an already subscribed address."""
    readers = _readers()
    try:
        mailing_list = readers.joinable(slug)
    except NotFoundError:
        _not_found(gettext("There is no such list."))
    _speak(mailing_list.language)
    wording = readers.consent_wording(mailing_list)
    form: dict[str, Any] = {"email": "", "name": "", "sections": []}
    if request.method != "POST":
        return _page("web/subscribe.html", mailing_list=mailing_list, wording=wording, form=form)
    form = {
        "email": request.form.get("email", ""),
        "name": request.form.get("name", ""),
        "sections": request.form.getlist("sections"),
    }
    check = readers.check_signup(
        slug,
        email=form["email"],
        name=form["name"],
        sections=form["sections"],
        ip=_client_ip(),
        bot=bool(request.form.get("website")),
    )
    if check.verdict == SignUpVerdict.TOO_MANY:
        return _too_many_signups(check.retry_after)
    if check.verdict == SignUpVerdict.BAD_ADDRESS:
        return _page("web/subscribe.html", 400, mailing_list=mailing_list, wording=wording,
                     form=form, error=check.error)  # fmt: skip
    if check.signup is not None:
        # The queue's thread outlives the request, so it gets the app itself, not the proxy.
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        after_response(app).submit(partial(_complete_signup, check.signup))
    return _check_inbox()


def _complete_signup(signup: SignUp) -> None:
    _readers().complete_signup(signup)


def _client_ip() -> str | None:
    # remote_addr is the direct peer: behind a reverse proxy, the proxy must be trusted
    # explicitly (werkzeug's ProxyFix) or every visitor shares the proxy's limit.
    return request.remote_addr


def _check_inbox() -> tuple[str, int]:
    hours = context().settings.confirm_mail_hours
    return _message(
        gettext("Check your inbox"),
        gettext(
            "If the address is right, an email about this subscription is on its way; a new "
            "subscription starts when you click the confirmation link in it."
        )
        + " "
        + ngettext(
            "We send at most one such email per address and list every hour: if one reached "
            "you already, its link still works.",
            "We send at most one such email per address and list every %(num)s hours: if one "
            "reached you already, its link still works.",
            hours,
        ),
    )


def _too_many_signups(retry_after: int) -> tuple[str, int, dict[str, str]]:
    minutes = max(1, (retry_after + 59) // 60)
    limit = context().settings.signups_per_ip_per_hour
    page, status = _message(
        gettext("Too many sign-ups"),
        ngettext(
            "This network has sent the sign-up form more than once in the last hour.",
            "This network has sent the sign-up form more than %(num)s times in the last hour.",
            limit,
        )
        + " "
        + gettext("Nothing was sent or saved.")
        + " "
        + ngettext(
            "Please try again in about a minute.",
            "Please try again in about %(num)s minutes.",
            minutes,
        ),
        429,
    )
    return page, status, {"Retry-After": str(retry_after)}


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    """GET (and HEAD) show a button and change nothing; POST confirms, unless the link was
    made before the subscriber withdrew (unsubscribed from this list or from all): consent
    given once is not revived by an old link."""
    readers = _readers()
    page = _with_link(lambda: readers.confirm_page(token))
    if page.state == ConfirmState.READY and request.method == "POST":
        page = _with_link(lambda: readers.confirm(token, ip=request.remote_addr))
    _speak(page.language)
    if page.gone:
        _not_found(gettext("This subscription no longer exists."))
    if page.state == ConfirmState.VOID:
        return _message(
            gettext("Link no longer valid"),
            gettext(
                "You unsubscribed after this link was sent, so it cannot subscribe you again. "
                "Nothing was changed. To receive %(list)s, sign up again on its page.",
                list=isolate(page.list_name),
            ),
            400,
        )
    # A mail scanner that opens the link must not subscribe anyone: a person clicks.
    done = page.done or page.state == ConfirmState.ALREADY
    return _page("web/confirm.html", list_name=page.list_name, done=done)


# -- unsubscribe and preferences -----------------------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> tuple[str, int]:
    """GET and HEAD show a button and change nothing (scanners prefetch links, some with HEAD).
    POST unsubscribes at once and answers 200, with no cookie, CSRF token or redirect
    (RFC 8058)."""
    readers = _readers()
    if request.method == "POST":
        page = _with_link(
            lambda: readers.unsubscribe(
                token,
                everything=request.form.get("scope") == "all",
                one_click=request.form.get("List-Unsubscribe") == "One-Click",
                ip=request.remote_addr,
            )
        )
    else:
        page = _with_link(lambda: readers.unsubscribe_page(token))
    if page.test_copy:
        return _test_copy()
    _speak(page.language)
    if page.gone:
        return _message(
            gettext("Unsubscribed"), gettext("This address is not subscribed any more.")
        )
    if page.done:
        return _page(
            "web/unsubscribed.html",
            list_name=page.list_name,
            everything=page.everything,
            email=page.email,
        )
    return _page("web/unsubscribe.html", list_name=page.list_name, email=page.email)


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> tuple[str, int]:
    readers = _readers()
    saved = request.method == "POST"
    if saved:
        page = _with_link(lambda: _save_preferences(readers, token))
    else:
        page = _with_link(lambda: readers.preferences(token))
    if page.test_copy:
        return _test_copy()
    _speak(page.language)
    if page.gone:
        _not_found(gettext("This address is no longer in our lists."))
    return _page("web/preferences.html", subscriber=page, rows=page.rows, saved=saved)


def _save_preferences(readers: Readers, token: str) -> Any:
    """Apply the form: name, which lists, which sections of each."""
    choices = {
        row.list.id: (
            request.form.get(f"list-{row.list.id}") == "on",
            request.form.getlist(f"sections-{row.list.id}"),
        )
        for row in readers.preferences(token).rows
    }
    return readers.save_preferences(
        token, name=request.form.get("name"), choices=choices, ip=request.remote_addr
    )


# -- the archive ----------------------------------------------------------------------------


@bp.get("/archive/<slug>/")
def archive_index(slug: str) -> tuple[str, int]:
    try:
        mailing_list, editions = _readers().archive(slug)
    except NotFoundError:
        _not_found(gettext("There is no such list."))
    _speak(mailing_list.language)
    return _page("web/archive.html", mailing_list=mailing_list, editions=editions)


@bp.get("/archive/<slug>/<day>")
def archive_edition(slug: str, day: str) -> tuple[str, int]:
    """One edition as subscribers saw it, without anyone's personal links (the edition is in
    its list's language already; only a missing one needs a page of ours)."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        _speak(_readers().list_language(slug))
        _not_found(gettext("There is no edition of that date."))
    try:
        return _readers().archive_edition(slug, date), 200
    except NotFoundError:
        _speak(_readers().list_language(slug))
        _not_found(
            gettext("There is no edition of %(list)s of %(day)s.", list=isolate(slug), day=day)
        )
