"""The one core under every face: the CLI, the web pages, the API, the dashboard and the
Celery tasks all ask a ``Digest`` to preview, test-send, start, continue, pause, resume,
cancel and retry. It is built once from ``Settings`` and holds the database, the mailer
(with its DKIM signer and rate limiter), the transport factory and the dispatcher, so every
face sends the same message, signed and throttled the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import select

from digest.audience import eligible_choices, is_placeholder, normalise_email
from digest.config import Settings
from digest.edition import ledger, lifecycle
from digest.edition.build import (
    Draft,
    build_edition,
    draft_edition,
    drop_edition,
    stored_draft,
)
from digest.edition.select import local_today, parse_since
from digest.errors import DigestError, InputError, NotFoundError, TransportError
from digest.mail.mime import Recipient, random_message_id
from digest.mail.tokens import TokenSigner
from digest.mail.verp import notice_return_path
from digest.send import schedule
from digest.send.batch import BatchReport, is_sending, send_batch, send_until_done
from digest.send.mailer import EditionMailer, mail_domain, make_mailer
from digest.service import catalog, throttle
from digest.service.access import Access
from digest.service.catalog.facade import Catalog
from digest.service.catalog.views import ListView
from digest.service.dispatch import (
    BackgroundDispatcher,
    CeleryDispatcher,
    Dispatched,
    Dispatcher,
    InProcessDispatcher,
    OnBatch,
)
from digest.service.inbox import Inbox
from digest.service.notices import SIGNUP_MAIL, Notice, build_notice, signup_mail_key
from digest.service.summary import LATE_STATES, EditionSummary, summarize
from digest.service.users import Users
from digest.service.workers import Workers, read_workers
from digest.store.db import Database
from digest.store.models import Edition, EditionStatus, MailingList, Subscriber, utcnow
from digest.transports import Envelope, Outcome, SmtpTransport, Transport, transport_for

if TYPE_CHECKING:
    from pathlib import Path

    from celery import Celery

    from digest.ingest import SourceReport
    from digest.service.demo import DemoSite
    from digest.service.metrics import Figures
    from digest.service.readers import Readers
    from digest.service.relays import Relays
    from digest.service.review import Review
    from digest.service.stats import EditionStats, WeeklyReport
    from digest.service.tracking import Tracking

__all__ = [
    "BatchReport",
    "Digest",
    "Dispatched",
    "Draft",
    "EditionSummary",
    "ListToday",
    "NotYetError",
    "SendStart",
    "SourceReport",
    "Workers",
    "parse_day",
    "parse_since",
    "sample_links",
]

log = logging.getLogger(__name__)


#: What a test copy's subject starts with.
TEST_SUBJECT_PREFIX = "[TEST] "

#: Transport failures an in-process send retries (after 2, 4, 8 s) before it stops.
IN_PROCESS_RETRIES = 3


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Edition dates accepted. Outside them a date is a typo, and at the ends of ``datetime``'s
#: range the edition window (the day in the list's zone, in UTC) would overflow.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2200, 12, 31)


def parse_day(value: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` from FIRST_DAY to LAST_DAY, or nothing; anything else is an InputError
    naming the value."""
    if not value:
        return None
    # fromisoformat also takes 20261124 and 2026-W48-2: an operator means YYYY-MM-DD.
    if not _DAY.fullmatch(value):
        raise InputError(f"date must be YYYY-MM-DD, not {value[:40]!r}")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"date {value} is not a real date ({exc})") from exc
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InputError(f"date {value} is out of range: from {FIRST_DAY} to {LAST_DAY}")
    return day


class NotYetError(InputError):
    """A send asked for a day that has not started in the list's time zone."""

    def __init__(self, list_slug: str, day: dt.date, today: dt.date, tz_name: str) -> None:
        super().__init__(
            f"{day} has not started yet for list {list_slug} (it is {today} in {tz_name}): "
            "its edition is built on the day, when its articles are in"
        )
        self.list_slug = list_slug
        self.day = day


def sample_links(settings: Settings) -> dict[str, str]:
    """Links that stand in for a subscriber's own in previews and test copies: they lead to
    the test-copy page (``readers.TEST_COPY_TOKEN``) rather than to anyone's unsubscribe."""
    base = settings.base_url.rstrip("/")
    return {
        "unsubscribe": f"{base}/unsubscribe/preview",
        "preferences": f"{base}/preferences/preview",
    }


@dataclass
class SendStart:
    """What starting a send did: the edition, and whether anything will go out."""

    edition_id: int
    list_slug: str
    day: dt.date
    status: EditionStatus
    created: bool
    #: How the rows were handed on; None when the edition had nothing to send.
    dispatched: Dispatched | None = None
    #: Subscribers who joined since an existing edition was built and are not in its ledger.
    late: int = 0
    #: Of those, how many this call added (``include_late``).
    included: int = 0

    @property
    def sending(self) -> bool:
        return self.dispatched is not None

    @property
    def mode(self) -> str:
        return self.dispatched.mode if self.dispatched else "nothing"

    @property
    def batches(self) -> int:
        return self.dispatched.batches if self.dispatched else 0

    @property
    def empty(self) -> bool:
        """The day had no articles: recorded as an empty edition, nothing sent."""
        return self.status == EditionStatus.EMPTY


@dataclass(frozen=True)
class ListToday:
    """A list, its day today in its own time zone, and that day's edition if it was built."""

    list: ListView
    day: dt.date
    edition: EditionSummary | None


class Digest:
    """Settings in, every operator action out. Parts are made on first use, so a command
    that needs no database or mailer does not pay for one."""

    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        mailer: EditionMailer | None = None,
        transport_factory: Callable[[], Transport] | None = None,
        dispatcher: Dispatcher | None = None,
        background: bool = False,
        celery_app: Celery | None = None,
    ) -> None:
        self.settings = settings
        self._db = db
        self._mailer = mailer
        self._transport_factory = transport_factory
        self._dispatcher = dispatcher
        self._background = background
        self._celery_app = celery_app
        self._schema_current = False

    # -- parts ------------------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.from_settings(self.settings)
        return self._db

    def require_schema(self) -> Database:
        """The database, once it is known to be at the current schema."""
        # Checked until found current, then remembered: the check reads every migration
        # script, and the web app asks before each request's query.
        if not self._schema_current:
            if not self.db.is_current():
                raise DigestError(
                    f"the database at {self.settings.database_url} is not set up or is out "
                    "of date: run `digest init`"
                )
            self._schema_current = True
        return self.db

    @cached_property
    def catalog(self) -> Catalog:
        """Sections, sources, lists and subscribers, as the faces read and change them."""
        return Catalog(self.settings, self.require_schema)

    def install_sample(self, directory: Path) -> DemoSite:
        """The bundled sample site's feeds written to ``directory`` and added here."""
        from digest.service.demo import install_sample

        return install_sample(self.db, directory)

    @cached_property
    def readers(self) -> Readers:
        """What the public pages and the links in readers' mail do."""
        from digest.service.readers import Readers

        return Readers(self)

    @cached_property
    def tokens(self) -> TokenSigner:
        """Signs and checks the tokens in readers' links."""
        return TokenSigner(self.settings.secret)

    @cached_property
    def tracking(self) -> Tracking:
        """Tracked links and the open pixel."""
        from digest.service.tracking import Tracking

        return Tracking(self.settings, self.require_schema)

    @cached_property
    def relays(self) -> Relays:
        """The relays' webhooks (SES, Postmark, SendGrid, Mailgun)."""
        from digest.service.relays import Relays

        return Relays(self)

    @cached_property
    def review(self) -> Review:
        """The editors' review of held editions: changes, approval, release."""
        from digest.service.review import Review

        return Review(self)

    @cached_property
    def access(self) -> Access:
        """API tokens and dashboard logins."""
        return Access(self.settings, self.require_schema)

    @cached_property
    def users(self) -> Users:
        """The dashboard's named users and their roles."""
        return Users(self.require_schema)

    @cached_property
    def inbox(self) -> Inbox:
        """The inbound server, IMAP polling and forgetting a person."""
        return Inbox(self.settings, self.require_schema)

    def configure_logging(self) -> None:
        """Log as the settings say (DIGEST_LOG_FORMAT), for a long-running process."""
        from digest.logs import configure_logging

        configure_logging(self.settings)

    def upgrade_database(self) -> str:
        """Create the schema, or bring it to the newest migration; returns the database URL."""
        self.db.upgrade()
        return self.settings.database_url

    @property
    def mailer(self) -> EditionMailer:
        # One per process: its cache of rendered edition variants is what keeps
        # Jinja2 and premailer off the per-recipient path.
        if self._mailer is None:
            self._mailer = make_mailer(self.settings)
        return self._mailer

    def transport(self) -> Transport:
        """A new connection to the mail server (or the outbox folder)."""
        if self._transport_factory is not None:
            return self._transport_factory()
        return transport_for(self.settings)

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = self._make_dispatcher()
        return self._dispatcher

    def _make_dispatcher(self) -> Dispatcher:
        if self.settings.uses_broker:
            return CeleryDispatcher(
                self.celery_app, self.db, self.settings.batch_size, self.settings.queue
            )
        if self._background:
            return BackgroundDispatcher(self.send_all, self.ingest_source, self.send_notice)
        return InProcessDispatcher(self.send_all, self.ingest_source, self.send_notice)

    @cached_property
    def celery_app(self) -> Celery:
        if self._celery_app is not None:
            return self._celery_app
        from digest.service.queue import make_celery

        return make_celery(self.settings)

    # -- reading ------------------------------------------------------------------------
    def draft(
        self,
        list_slug: str,
        day: dt.date | None,
        *,
        since: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> tuple[Draft, int | None]:
        """What the list's edition of ``day`` (default: today in its zone) holds: the stored
        content and the edition's id if it was built, else a draft of what building it now
        would choose (its window ending now) and None. An empty edition counts as not built:
        the next send builds it again from what is there now."""
        with self.db.session() as session:
            mailing_list = catalog.get_list(session, list_slug)
            day = day or local_today(mailing_list.timezone, now)
            edition = session.scalars(
                select(Edition).where(
                    Edition.list_id == mailing_list.id, Edition.edition_date == day
                )
            ).first()
            if edition is not None and edition.status != EditionStatus.EMPTY:
                return stored_draft(session, self.settings, edition), edition.id
            kept = edition.window_start if edition is not None else None
            draft = draft_edition(
                session, self.settings, mailing_list, day, now=now, since=since, kept_start=kept
            )
            return draft, None

    def edition_draft(self, edition_id: int) -> Draft:
        with self.db.session() as session:
            edition = session.get(Edition, edition_id)
            if edition is None:
                raise NotFoundError("edition", edition_id)
            return stored_draft(session, self.settings, edition)

    def has_started(self, draft: Draft) -> bool:
        """Whether the draft's day has begun in its list's time zone."""
        return draft.day <= local_today(draft.mailing_list.timezone)

    def readers_without_news(self, draft: Draft) -> int:
        """How many of the list's readers would get no mail from ``draft``: their chosen
        sections have nothing in it (and the list skips them rather than send it all)."""
        with self.db.session() as session:
            return sum(
                1
                for chosen in eligible_choices(session, draft.mailing_list.id)
                if not draft.sections_for(chosen)
            )

    def preview_html(self, draft: Draft) -> str:
        """The digest's HTML as a subscriber would see it, with sample personal links."""
        if not draft.sections:
            raise DigestError(
                f"no articles for {draft.mailing_list.slug} on {draft.day}: nothing to preview"
            )
        template = self.mailer.message_template(draft)
        return template.html.fill(sample_links(self.settings))

    # -- sending ------------------------------------------------------------------------
    def send_test(self, draft: Draft, to_address: str) -> tuple[str, str]:
        """One copy of the digest to ``to_address``, signed and throttled like every other
        message, without touching the ledger.

        Returns (normalised address, the transport's detail: the outbox file or the reply).
        """
        address = normalise_email(to_address)
        if not draft.sections:
            raise DigestError(
                f"no articles for {draft.mailing_list.slug} on {draft.day}: nothing to send"
            )
        # Marked in the subject, so a test copy is never taken for the real edition.
        template = self.mailer.message_template(
            dataclasses.replace(draft, subject=f"{TEST_SUBJECT_PREFIX}{draft.subject}")
        )
        domain = mail_domain(self.settings, draft.mailing_list)
        message = template.build(
            Recipient(address, "", sample_links(self.settings), random_message_id(domain))
        )
        label = f"{draft.mailing_list.slug}-{draft.day.isoformat()}-test"
        self.mailer.rate_limiter.wait(address.rpartition("@")[2])
        with self.transport() as transport:
            result = transport.send(Envelope(template.from_address, address, label), message)
        if result.outcome != Outcome.SENT:
            raise DigestError(f"test copy to {address} refused: {result.code} {result.detail}")
        return address, result.detail

    def start(
        self,
        list_slug: str,
        day: dt.date | None = None,
        on_batch: OnBatch | None = None,
        *,
        send_early: bool = False,
        include_late: bool = False,
        since: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> SendStart:
        """Build the list's edition of ``day`` (once: a second call finds the first one's) and
        send it to everyone who does not have it yet.

        A day that has not started in the list's zone is refused unless ``send_early``: its
        articles are not in yet, and what is built is what everyone gets. ``include_late``
        first adds the subscribers who joined since an existing edition was built. ``since``
        starts a list's first edition (naive: the list's local time); ``now`` is the build's
        time (naive UTC, default now).
        """
        with self.db.session() as session:
            mailing_list = catalog.get_list(session, list_slug)
            catalog.check_list_enabled(mailing_list)
            today = local_today(mailing_list.timezone, now)
            day = day or today
            if day > today and not send_early:
                raise NotYetError(list_slug, day, today, mailing_list.timezone)
        self.check_ready()
        with self.db.session() as session:
            mailing_list = catalog.get_list(session, list_slug)
            edition, created = build_edition(
                session,
                self.settings,
                mailing_list,
                day,
                check=self.mailer.check,
                today=today,
                now=now,
                since=since,
            )
            included = late = 0
            if not created and edition.status in LATE_STATES:
                if include_late:
                    edition, included = lifecycle.include_late(session, edition.id)
                else:
                    late = ledger.late_count(session, edition)
            start = SendStart(
                edition.id, list_slug, day, edition.status, created, late=late, included=included
            )
        if start.status == EditionStatus.READY:
            start.dispatched = self.continue_send(start.edition_id, on_batch=on_batch)
        return start

    def late_count(self, edition_id: int) -> int:
        """Subscribers who joined since the edition was built and are not in its ledger."""
        with self.db.session() as session:
            edition = session.get(Edition, edition_id)
            if edition is None:
                raise NotFoundError("edition", edition_id)
            if edition.status not in LATE_STATES:
                return 0
            return ledger.late_count(session, edition)

    def include_late(self, edition_id: int) -> int:
        """Add those who joined since the build to the edition's ledger, once each; returns how
        many. A ready edition's new rows are sent by the next batch (``continue_send``, the
        sweep, or ``start``); a paused one's when it is resumed."""
        with self.db.session() as session:
            _, count = lifecycle.include_late(session, edition_id)
        return count

    def drop_edition(self, edition_id: int) -> tuple[str, dt.date, int]:
        """Delete an edition nobody has received (every row pending or skipped) and its rows.

        Returns (list slug, date, rows removed): the day can then be built afresh.
        """
        with self.db.session() as session:
            edition, rows = drop_edition(session, edition_id)
            slug = session.get_one(MailingList, edition.list_id).slug
            return slug, edition.edition_date, rows

    def rebuild_edition(
        self,
        edition_id: int,
        on_batch: OnBatch | None = None,
        *,
        send_early: bool = False,
        now: dt.datetime | None = None,
    ) -> SendStart:
        """Drop an edition nobody has received and build its day again from the articles there
        are now, in one transaction (a template that fails keeps the old one); the new
        edition keeps the old one's window start, ends at this build (``now``), and is sent
        like ``start``'s."""
        with self.db.session() as session:
            old = session.get(Edition, edition_id)
            if old is None:
                raise NotFoundError("edition", edition_id)
            mailing_list = session.get_one(MailingList, old.list_id)
            slug, day = mailing_list.slug, old.edition_date
            today = local_today(mailing_list.timezone, now)
            if day > today and not send_early:
                raise NotYetError(slug, day, today, mailing_list.timezone)
        self.check_ready()
        with self.db.session() as session:
            mailing_list = session.get_one(MailingList, mailing_list.id)
            dropped, _ = drop_edition(session, edition_id)
            edition, created = build_edition(
                session,
                self.settings,
                mailing_list,
                day,
                check=self.mailer.check,
                today=today,
                now=now,
                kept_start=dropped.window_start,
            )
            start = SendStart(edition.id, slug, day, edition.status, created)
        if start.status == EditionStatus.READY:
            start.dispatched = self.continue_send(start.edition_id, on_batch=on_batch)
        return start

    def check_ready(self) -> None:
        """Say now, in one line, if sending cannot start (the broker or the SMTP server is
        down), rather than after an edition is built and left unsent."""
        self.dispatcher.check()
        if self.settings.smtp_url and not self.settings.uses_broker:
            with self.transport() as probe:
                if isinstance(probe, SmtpTransport):
                    probe.connect()

    def continue_send(
        self, edition_id: int, rows: int | None = None, on_batch: OnBatch | None = None
    ) -> Dispatched:
        """Hand a sending edition's due rows on, to be sent as the settings say."""
        return self.dispatcher.send(edition_id, rows, on_batch)

    def send_all(self, edition_id: int, on_batch: OnBatch | None = None) -> BatchReport:
        """Send batch after batch in this process until nothing is due."""
        return send_until_done(
            self.db,
            self.mailer,
            edition_id,
            self.transport,
            on_batch,
            retries=IN_PROCESS_RETRIES,
        )

    def notify(self, notice: Notice) -> None:
        """Get one notice sent: here, or on a broker by a worker."""
        self.dispatcher.notify(notice)

    def send_notice(self, notice: Notice, *, final: bool = True) -> None:
        """Send one notice now, signed and throttled like every digest. A notice the server
        does not take raises TransportError; on the ``final`` try its sign-up's mail slot
        is given back first (the person will post the form again and get a new one)."""
        with self.db.session() as session:
            subscriber = session.get(Subscriber, notice.subscriber_id)
            mailing_list = session.get(MailingList, notice.list_id)
            if subscriber is None or mailing_list is None or is_placeholder(subscriber.email):
                return  # forgotten or removed since it was asked for: nobody to write to
            built = build_notice(
                self.settings, self.mailer.tokens, subscriber, mailing_list, notice
            )
        message = built.message
        if self.mailer.dkim_signer is not None:
            message = self.mailer.dkim_signer(message)
        self.mailer.rate_limiter.wait(built.to_address.rpartition("@")[2])
        try:
            with self.transport() as transport:
                # A return path of its own, so a bounce of a sign-up mail is read like a
                # digest's (digest.feedback.inbound) rather than lost in the From mailbox.
                sender = notice_return_path(self.settings, notice.subscriber_id, built.from_address)
                result = transport.send(Envelope(sender, built.to_address, "notices"), message)
            if result.outcome != Outcome.SENT:
                raise TransportError(f"notice refused: {result.code} {result.detail}")
        except TransportError:
            if final:
                with self.db.session() as session:
                    throttle.give_back(
                        session, SIGNUP_MAIL, signup_mail_key(built.to_address, notice.list_id)
                    )
            raise

    def send_batch(self, edition_id: int) -> BatchReport:
        """One batch over one connection (what a worker's task does)."""
        with self.transport() as transport:
            return send_batch(self.db, self.mailer, edition_id, transport)

    def is_sending(self, edition_id: int) -> bool:
        return is_sending(self.db, edition_id)

    # -- the operator's hold on a send ----------------------------------------------------
    def pause(self, edition_id: int) -> Edition:
        with self.db.session() as session:
            return lifecycle.pause(session, edition_id)

    def resume(self, edition_id: int, on_batch: OnBatch | None = None) -> Dispatched:
        """Let a paused edition send again, from where it stopped."""
        with self.db.session() as session:
            lifecycle.resume(session, edition_id)
        return self.continue_send(edition_id, on_batch=on_batch)

    def cancel(self, edition_id: int) -> int:
        """Stop an edition for good; returns how many unsent rows were skipped."""
        with self.db.session() as session:
            _, skipped = lifecycle.cancel(session, edition_id)
        return skipped

    def retry_failed(
        self, edition_id: int, on_batch: OnBatch | None = None
    ) -> tuple[int, Dispatched | None]:
        """Queue the failed rows again, and only them; returns (rows, how they went on)."""
        with self.db.session() as session:
            _, count = lifecycle.retry_failed(session, edition_id)
        if not count:
            return 0, None
        return count, self.continue_send(edition_id, on_batch=on_batch)

    def retry_now(
        self, edition_id: int, on_batch: OnBatch | None = None
    ) -> tuple[int, Dispatched | None]:
        """Bring the deferred rows' next try forward to now and send them (a paused edition's
        wait for `resume`); returns (rows, how they went on). Their attempts still count."""
        with self.db.session() as session:
            edition, count = lifecycle.retry_now(session, edition_id)
            sending = edition.status == EditionStatus.READY
        if not count or not sending:
            return count, None
        return count, self.continue_send(edition_id, on_batch=on_batch)

    def overview(
        self,
        edition_id: int | None = None,
        limit: int = 50,
        *,
        list_slug: str | None = None,
        offset: int = 0,
    ) -> list[EditionSummary]:
        """The newest editions (of one list, or one edition) as an operator reads them."""
        now = utcnow()
        with self.db.session() as session:
            query = select(Edition, MailingList).join(MailingList).order_by(Edition.id.desc())
            if edition_id is not None:
                query = query.where(Edition.id == edition_id)
            if list_slug is not None:
                query = query.where(MailingList.id == catalog.get_list(session, list_slug).id)
            rows = session.execute(query.limit(limit).offset(offset)).all()
            if edition_id is not None and not rows:
                raise NotFoundError("edition", edition_id)
            waiting = self._waiting_after
            return [summarize(session, e, m, now, waiting_after=waiting) for e, m in rows]

    def summary(self, edition_id: int) -> EditionSummary:
        """One edition's summary (NotFoundError if there is none)."""
        return self.overview(edition_id)[0]

    def lists_today(self) -> list[ListToday]:
        """Each list (by name) with its day today in its own zone and that day's edition."""
        now = utcnow()
        views = {view.id: view for view in self.catalog.lists()}
        found = []
        with self.db.session() as session:
            for mailing_list in session.scalars(select(MailingList).order_by(MailingList.name)):
                day = local_today(mailing_list.timezone, now)
                edition = session.scalars(
                    select(Edition).where(
                        Edition.list_id == mailing_list.id, Edition.edition_date == day
                    )
                ).first()
                summary = None
                if edition is not None:
                    summary = summarize(
                        session, edition, mailing_list, now, waiting_after=self._waiting_after
                    )
                found.append(ListToday(views[mailing_list.id], day, summary))
        return found

    def today(self, list_slug: str) -> EditionSummary | None:
        """The summary of the list's edition of today (in its zone), if it was built."""
        with self.db.session() as session:
            mailing_list = catalog.get_list(session, list_slug)
            edition = session.scalars(
                select(Edition).where(
                    Edition.list_id == mailing_list.id,
                    Edition.edition_date == local_today(mailing_list.timezone),
                )
            ).first()
            if edition is None:
                return None
            return summarize(
                session, edition, mailing_list, utcnow(), waiting_after=self._waiting_after
            )

    def edition_of(self, list_slug: str, day: dt.date | None = None) -> EditionSummary:
        """The summary of the list's edition of ``day`` (default: today in its zone);
        NotFoundError, naming the list and day, if it was not built."""
        with self.db.session() as session:
            mailing_list = catalog.get_list(session, list_slug)
            day = day or local_today(mailing_list.timezone)
            edition = session.scalars(
                select(Edition).where(
                    Edition.list_id == mailing_list.id, Edition.edition_date == day
                )
            ).first()
            if edition is None:
                raise NotFoundError("edition", f"{list_slug} {day.isoformat()}")
            return summarize(
                session, edition, mailing_list, utcnow(), waiting_after=self._waiting_after
            )

    @property
    def _waiting_after(self) -> float | None:
        """How long due rows may go unclaimed before an edition waits for a worker; None
        without a broker, where whoever sends is this process (or the next `digest send`)."""
        return self.settings.waiting_after_seconds if self.settings.uses_broker else None

    def workers(self) -> Workers | None:
        """The queue's workers as their heartbeats tell it; None when there is no broker, or
        it is not Redis (nothing to read). DigestError if Redis does not answer."""
        if not self.settings.uses_broker:
            return None
        return read_workers(self.settings)

    def counts(self, edition_id: int) -> dict[str, int]:
        with self.db.session() as session:
            return ledger.counts(session, edition_id)

    def metrics(self) -> Figures:
        """The counts ``/metrics`` exposes, read from the ledger now (and the workers'
        heartbeats, on a Redis broker)."""
        from digest.service.metrics import figures

        return figures(self.db, self.settings)

    def close(self) -> None:
        """Close the database's connections (a test's app, a process about to fork)."""
        if self._db is not None:
            self._db.dispose()

    # -- what readers did -----------------------------------------------------------------
    def edition_stats(self, edition_id: int) -> EditionStats:
        """An edition's deliveries, bounces, complaints, unsubscribes and clicks."""
        from digest.service.stats import edition_stats

        with self.db.session() as session:
            return edition_stats(session, edition_id)

    def weekly_report(self, list_slug: str | None = None) -> WeeklyReport:
        """Each list's (or one list's) sections by click-through over the last 7 days."""
        from digest.service.stats import weekly_report

        with self.db.session() as session:
            return weekly_report(session, list_slug)

    # -- the schedule ---------------------------------------------------------------------
    def send_due(self, now: dt.datetime | None = None) -> list[int]:
        """Build and dispatch today's edition of every list whose send time has passed in its
        zone; returns the editions started.

        Idempotent: the edition of (list, date) is built once, and its rows are dispatched
        only by the call that built it (the sweep restarts anything stalled).
        """
        started = []
        now = now or utcnow()
        # A list with review: its edition built ahead of the send time, held for the editors.
        for list_id, day in schedule.review_lists(self.db, now):
            self._build_due(list_id, day, now, hold=True)
        for list_id, day in schedule.due_lists(self.db, now):
            with self.db.session() as session:
                mailing_list = session.get_one(MailingList, list_id)
                # Not built ahead (nothing kept the schedule then): held now if it must wait
                # for an approval, else it goes as built.
                hold = mailing_list.review and mailing_list.unreviewed == "hold"
            built = self._build_due(list_id, day, now, hold=hold)
            if built is not None and built[1] and built[2]:
                self.continue_send(built[0])
                started.append(built[0])
        # Held editions whose send time came: approved ones, and those sent as built.
        started.extend(self.review.release_due(now))
        return started

    def _build_due(
        self, list_id: int, day: dt.date, now: dt.datetime, *, hold: bool
    ) -> tuple[int, bool, bool] | None:
        """Build the list's edition of ``day`` for the schedule: (edition id, whether this
        call built it, whether it is ready to send), or None if it could not be built."""
        try:
            with self.db.session() as session:
                mailing_list = session.get_one(MailingList, list_id)
                edition, created = build_edition(
                    session,
                    self.settings,
                    mailing_list,
                    day,
                    check=self.mailer.check,
                    today=day,
                    now=now,
                    hold=hold,
                )
                return edition.id, created, edition.status == EditionStatus.READY
        except DigestError as exc:
            # A broken template (or the like) stops this list's edition, not the others';
            # the check runs again next minute, so the fix is picked up without a restart.
            log.error("list %s: edition not built: %s", list_id, exc, extra={"list_id": list_id})
            return None

    def sweep(self, now: dt.datetime | None = None) -> dict[int, int]:
        """Dispatch the due rows nobody is working on; returns {edition id: batches}."""
        stalled = schedule.stalled_rows(self.db, self.settings.stall_seconds, now or utcnow())
        from digest.feedback.clicks import prune

        with self.db.session() as session:
            # Clicks name deliveries, so readers' habits are not kept longer than they serve.
            prune(session, self.settings.click_retention_days, now)
        return {
            edition_id: self.continue_send(edition_id, rows).batches
            for edition_id, rows in stalled.items()
        }

    # -- gathering ------------------------------------------------------------------------
    def ingest(self, *, force: bool = False) -> list[SourceReport]:
        """Fetch every due source (all of them with ``force``) here and store new articles."""
        from digest.ingest import ingest_all

        return ingest_all(self.db, self.settings, force=force)

    def ingest_due(self, now: dt.datetime | None = None) -> None:
        """Hand every due source on (queued on a broker, fetched here otherwise)."""
        from digest.ingest.run import due_source_ids

        if not self.settings.uses_broker:
            self.ingest()
            return
        with self.db.session() as session:
            # Sources backing off after errors are not queued until their next try.
            ids = due_source_ids(session, now or utcnow())
        self.dispatcher.ingest(ids)

    def ingest_source(self, source_id: int) -> SourceReport:
        from digest.ingest import ingest_source

        # force=False: a source that failed since it was queued waits for its next try.
        return ingest_source(self.db, self.settings, source_id, force=False)
