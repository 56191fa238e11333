"""What a reader can do with Digest's public pages and the links in their mail: sign up (with
double opt-in), confirm, unsubscribe (one list or all, one-click), choose lists and sections,
and read the archive. Every personal page is reached through a signed token; the web face only
turns forms into these calls and these results into pages.

Only a POST changes anything (``confirm``, ``unsubscribe``, ``save_preferences``, and the
sign-up completed after the answer); the ``*_page`` calls a GET makes change nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import audience
from digest.audience import ConfirmState, SignUp
from digest.edition.build import stored_draft
from digest.errors import DigestError, InputError, NotFoundError
from digest.mail.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE
from digest.service import throttle
from digest.service.catalog import lists
from digest.service.catalog.views import ListView
from digest.service.notices import (
    CONFIRM_NOTICE,
    SIGNUP_MAIL,
    SUBSCRIBED_NOTICE,
    Notice,
    signup_mail_key,
)
from digest.service.translations import N_, wording
from digest.store.models import (
    Edition,
    EditionStatus,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

if TYPE_CHECKING:
    from digest.service.core import Digest

__all__ = [
    "CONSENT_WORDING",
    "TEST_COPY_TOKEN",
    "ConfirmState",
    "LinkPage",
    "PreferenceRow",
    "Preferences",
    "Readers",
    "SignUp",
    "SignUpCheck",
    "SignUpVerdict",
]

log = logging.getLogger(__name__)

#: Shown on the form, in the list's language, and stored with each sign-up as the consent
#: given: the words the person read.
CONSENT_WORDING = N_(
    "Yes, email me %(list)s from %(site)s. I can unsubscribe at any time with the link in "
    "every email."
)
#: Throttle kind of sign-up form posts per client IP.
SIGNUP_IP = "signup-ip"
#: What test copies and previews carry where a reader's own token would be: the pages say it
#: is a test copy and change nothing.
TEST_COPY_TOKEN = "preview"
#: Edition states shown in the archive.
PUBLISHED = (EditionStatus.READY, EditionStatus.DONE, EditionStatus.PAUSED)


class SignUpVerdict(enum.Enum):
    ACCEPTED = "accepted"  # say "check your inbox", and complete it after the answer
    QUIET = "quiet"  # say "check your inbox" and do nothing (a bot, a forgotten address)
    BAD_ADDRESS = "bad-address"  # show the form again with the error
    TOO_MANY = "too-many"  # this client posted too often: 429


@dataclass(frozen=True)
class SignUpCheck:
    verdict: SignUpVerdict
    signup: SignUp | None = None
    error: str = ""
    retry_after: int = 0


@dataclass(frozen=True)
class LinkPage:
    """What a confirm or unsubscribe link leads to."""

    list_name: str = ""
    email: str = ""
    #: The confirm link's state, or for an unsubscribe whether it is done.
    state: ConfirmState | None = None
    done: bool = False
    #: Unsubscribed from all lists, not only this one.
    everything: bool = False
    test_copy: bool = False
    #: The subscriber or subscription is gone (forgotten, removed).
    gone: bool = False
    #: The list's language, for the page; None when the list is gone.
    language: str | None = None


@dataclass(frozen=True)
class PreferenceRow:
    list: ListView
    subscribed: bool
    chosen: frozenset[str]


@dataclass(frozen=True)
class Preferences:
    name: str
    email: str
    rows: list[PreferenceRow]
    test_copy: bool = False
    gone: bool = False
    #: The page's language: that of the list whose mail held the link, else of the first
    #: list subscribed to; None when there is neither.
    language: str | None = None


class Readers:
    def __init__(self, core: Digest) -> None:
        self.core = core
        self.settings = core.settings

    # -- lists on offer -----------------------------------------------------------------------
    def offered_lists(self) -> list[ListView]:
        """The lists a visitor may join from the index (enabled and public)."""
        return self.core.catalog.lists(offered=True)

    def joinable(self, slug: str) -> ListView:
        """A list's subscribe page: any list but a disabled one (a hidden list keeps its own
        page); NotFoundError otherwise."""
        found = self.core.catalog.get_list(slug)
        if not found.enabled:
            raise NotFoundError("list", slug)
        return found

    def consent_wording(self, mailing_list: ListView) -> str:
        """The consent sentence of the list's form, in the list's language."""
        return wording(mailing_list.language).gettext(
            CONSENT_WORDING, list=mailing_list.name, site=self.settings.site_name
        )

    def list_language(self, slug: str) -> str | None:
        """The language of the list ``slug``; None if there is no such list."""
        try:
            return self.core.catalog.get_list(slug).language
        except NotFoundError:
            return None

    # -- sign-up ------------------------------------------------------------------------------
    def check_signup(
        self,
        slug: str,
        *,
        email: str,
        name: str,
        sections: Sequence[str],
        ip: str | None,
        bot: bool = False,
    ) -> SignUpCheck:
        """Check a posted sign-up form for what does not depend on who the address belongs to
        (the client's rate, the address's syntax), so the answer and its timing are the same
        for a new, a pending and an already subscribed address. Counts the post."""
        mailing_list = self.joinable(slug)
        with self.core.db.session() as session:
            per_ip = throttle.take(
                session,
                SIGNUP_IP,
                ip or "unknown",
                self.settings.signups_per_ip_per_hour,
                dt.timedelta(hours=1),
            )
            if not per_ip.allowed:
                return SignUpCheck(SignUpVerdict.TOO_MANY, retry_after=per_ip.retry_after)
            if bot:  # a field people never see: only bots fill it
                return SignUpCheck(SignUpVerdict.QUIET)
            try:
                address = audience.normalise_email(email)
            except InputError as exc:
                return SignUpCheck(SignUpVerdict.BAD_ADDRESS, error=str(exc))
            if audience.is_forgotten(session, address):
                # Store nothing, send nothing, and say nothing about why.
                return SignUpCheck(SignUpVerdict.QUIET)
        offered = set(mailing_list.section_slugs)
        signup = SignUp(
            list_id=mailing_list.id,
            address=address,
            name=audience.clean_name(name),
            sections=[s for s in sections if s in offered] or None,
            wording=self.consent_wording(mailing_list),
            ip=ip,
        )
        return SignUpCheck(SignUpVerdict.ACCEPTED, signup=signup)

    def complete_signup(self, signup: SignUp) -> None:
        """Record the sign-up and have its one email sent: a confirm link, or for a subscriber
        a note that they already receive the list. At most one email per mailbox and list in
        the window (the address's ``+tag`` aside)."""
        with self.core.db.session() as session:
            subscriber, subscription, event = audience.record_signup(session, signup)
            window = dt.timedelta(hours=self.settings.confirm_mail_hours)
            key = signup_mail_key(signup.address, signup.list_id)
            if not throttle.take(session, SIGNUP_MAIL, key, 1, window).allowed:
                return  # the email sent within the window still holds a good link
            kind = (
                SUBSCRIBED_NOTICE
                if subscription.status == SubscriptionStatus.CONFIRMED
                else CONFIRM_NOTICE
            )
            notice = Notice(kind, subscriber.id, signup.list_id, event.id)
        # Committed first: the consent history holds the sign-up even if the mail fails.
        try:
            self.core.notify(notice)
        except DigestError as exc:
            log.warning("sign-up email to subscriber %s not sent: %s", notice.subscriber_id, exc)

    # -- confirm ------------------------------------------------------------------------------
    def _ids(self, purpose: str, token: str) -> list[int]:
        """The ids a token carries; InputError for a forged, altered or expired one."""
        return self.core.tokens.verify(purpose, token)

    def _confirm_ids(self, token: str) -> tuple[int, int, int]:
        ids = self._ids(CONFIRM, token)
        if len(ids) < 2:
            raise InputError("this link is not valid")
        # Links mailed before sign-ups were numbered carry no sign-up id.
        return ids[0], ids[1], ids[2] if len(ids) > 2 else 0

    def confirm_page(self, token: str) -> LinkPage:
        """What the confirm link can do now; changes nothing (scanners open links)."""
        subscriber_id, list_id, signup_id = self._confirm_ids(token)
        with self.core.db.session() as session:
            mailing_list = session.get(MailingList, list_id)
            state = audience.confirm_state(session, subscriber_id, list_id, signup_id)
            if mailing_list is None or state == ConfirmState.GONE:
                return LinkPage(gone=True, language=_language(mailing_list))
            return LinkPage(
                list_name=mailing_list.name, state=state, language=mailing_list.language
            )

    def confirm(self, token: str, *, ip: str | None) -> LinkPage:
        """Confirm the subscription, unless the link was made before the subscriber withdrew."""
        subscriber_id, list_id, signup_id = self._confirm_ids(token)
        with self.core.db.session() as session:
            mailing_list = session.get(MailingList, list_id)
            state = audience.confirm(session, subscriber_id, list_id, signup_id, ip=ip)
            if mailing_list is None or state == ConfirmState.GONE:
                return LinkPage(gone=True, language=_language(mailing_list))
            return LinkPage(
                list_name=mailing_list.name, state=state, done=True, language=mailing_list.language
            )

    # -- unsubscribe --------------------------------------------------------------------------
    def unsubscribe_page(self, token: str) -> LinkPage:
        if token == TEST_COPY_TOKEN:
            return LinkPage(test_copy=True)
        subscriber_id, list_id = self._ids(UNSUBSCRIBE, token)[:2]
        with self.core.db.session() as session:
            mailing_list = session.get(MailingList, list_id)
            subscriber = session.get(Subscriber, subscriber_id)
            if mailing_list is None or subscriber is None:
                return LinkPage(gone=True, language=_language(mailing_list))
            return LinkPage(
                list_name=mailing_list.name, email=subscriber.email, language=mailing_list.language
            )

    def unsubscribe(
        self, token: str, *, everything: bool, one_click: bool, ip: str | None
    ) -> LinkPage:
        """Unsubscribe at once (RFC 8058: no cookie, CSRF token or redirect needed)."""
        if token == TEST_COPY_TOKEN:
            return LinkPage(test_copy=True)
        subscriber_id, list_id = self._ids(UNSUBSCRIBE, token)[:2]
        with self.core.db.session() as session:
            mailing_list = session.get(MailingList, list_id)
            subscriber = session.get(Subscriber, subscriber_id)
            if mailing_list is None or subscriber is None:
                return LinkPage(gone=True, language=_language(mailing_list))
            left = audience.unsubscribe(
                session,
                subscriber_id,
                None if everything else list_id,
                source="one-click" if one_click else "unsubscribe page",
                ip=ip,
            )
            for left_id in left:
                # Their old confirm links are void now, so signing up again must mail a new
                # one at once; this link proves the address is theirs.
                throttle.forget(session, SIGNUP_MAIL, signup_mail_key(subscriber.email, left_id))
            return LinkPage(
                list_name=mailing_list.name,
                email=subscriber.email,
                done=True,
                everything=everything,
                language=mailing_list.language,
            )

    # -- preferences --------------------------------------------------------------------------
    def preferences(self, token: str) -> Preferences:
        if token == TEST_COPY_TOKEN:
            return Preferences("", "", [], test_copy=True)
        subscriber_id, from_list = self._preference_ids(token)
        offered = self.offered_lists()
        with self.core.db.session() as session:
            return self._preferences(session, subscriber_id, offered, from_list)

    def save_preferences(
        self,
        token: str,
        *,
        name: str | None,
        choices: Mapping[int, tuple[bool, Sequence[str]]],
        ip: str | None,
    ) -> Preferences:
        """Apply the form: name, which lists, which sections of each ({list id: (wanted,
        ticked sections)} for the lists on offer)."""
        if token == TEST_COPY_TOKEN:
            return Preferences("", "", [], test_copy=True)
        subscriber_id, from_list = self._preference_ids(token)
        offered = self.offered_lists()
        with self.core.db.session() as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None or audience.is_placeholder(subscriber.email):
                return Preferences(
                    "", "", [], gone=True, language=_list_language(session, from_list)
                )
            lists_on_offer = [lists.get_list(session, view.slug) for view in offered]
            audience.set_preferences(
                session,
                subscriber,
                subscriber.name if name is None else name,
                choices,
                lists_on_offer,
                ip=ip,
            )
            return self._preferences(session, subscriber_id, self.offered_lists(), from_list)

    def _preference_ids(self, token: str) -> tuple[int, int | None]:
        """The subscriber a preferences link names, and the list whose mail held it (links
        made before they named one carry none)."""
        ids = self._ids(PREFERENCES, token)
        return ids[0], ids[1] if len(ids) > 1 else None

    @staticmethod
    def _preferences(
        session: Session, subscriber_id: int, offered: list[ListView], from_list: int | None
    ) -> Preferences:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or audience.is_placeholder(subscriber.email):
            return Preferences("", "", [], gone=True, language=_list_language(session, from_list))
        mine = {
            s.list_id: s
            for s in session.scalars(
                select(Subscription)
                .where(Subscription.subscriber_id == subscriber_id)
                .order_by(Subscription.id)
            )
        }
        rows = [
            PreferenceRow(
                list=view,
                subscribed=view.id in mine and mine[view.id].status == SubscriptionStatus.CONFIRMED,
                chosen=frozenset(mine[view.id].sections or []) if view.id in mine else frozenset(),
            )
            for view in offered
        ]
        first = next((i for i, s in mine.items() if s.status == SubscriptionStatus.CONFIRMED), None)
        language = _list_language(session, from_list) or _list_language(session, first)
        return Preferences(subscriber.name, subscriber.email, rows, language=language)

    # -- the archive --------------------------------------------------------------------------
    def archive(self, slug: str) -> tuple[ListView, list[tuple[dt.date, str]]]:
        """A list and the (day, subject) of its published editions, newest first (a year)."""
        mailing_list = self.core.catalog.get_list(slug)
        with self.core.db.session() as session:
            rows = session.execute(
                select(Edition.edition_date, Edition.subject)
                .where(Edition.list_id == mailing_list.id, Edition.status.in_(PUBLISHED))
                .order_by(Edition.edition_date.desc())
                .limit(365)
            ).all()
        return mailing_list, [(day, subject) for day, subject in rows]

    def archive_edition(self, slug: str, day: dt.date) -> str:
        """One published edition's HTML as subscribers saw it, without anyone's personal links
        (they lead to the list's subscribe page); NotFoundError if there is none."""
        settings = self.settings
        with self.core.db.session() as session:
            mailing_list = lists.get_list(session, slug)
            edition = session.scalars(
                select(Edition).where(
                    Edition.list_id == mailing_list.id,
                    Edition.edition_date == day,
                    Edition.status.in_(PUBLISHED),
                )
            ).first()
            if edition is None:
                raise NotFoundError(f"{mailing_list.name} of", day.isoformat())
            draft = stored_draft(session, settings, edition)
            template = self.core.mailer.template_for(edition.id, draft, None)
        public = f"{settings.base_url.rstrip('/')}/subscribe/{slug}"
        return template.html.fill({"unsubscribe": public, "preferences": public})


def _language(mailing_list: MailingList | None) -> str | None:
    return None if mailing_list is None else mailing_list.language


def _list_language(session: Session, list_id: int | None) -> str | None:
    """The language of the list ``list_id``; None for no id or a list since removed."""
    return None if list_id is None else _language(session.get(MailingList, list_id))
