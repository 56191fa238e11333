"""The tables. One module so a reader sees the whole schema at once.

Times are stored as naive UTC (``utcnow()``): SQLite has no time zones and
PostgreSQL ``timestamp without time zone`` then compares the same way.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    """Now, as the naive UTC datetime every column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings so migrations never have to alter a native enum type.
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class SubscriberStatus(enum.StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"  # double opt-in not yet confirmed
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class EditionStatus(enum.StrEnum):
    EMPTY = "empty"  # no articles that day: recorded, nothing sent
    READY = "ready"  # built, ledger written, not all rows final yet
    #: Built ahead of the send time for a list with review, ledger written: no batch claims
    #: its rows until it is released (approved, or at the send time as the list says).
    HELD = "held"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"  # every ledger row is final


class StopReason(enum.StrEnum):
    """Why an edition stopped sending (or, while still ``ready``, why its last batch stopped);
    the words for the operator are in ``Edition.status_reason``."""

    OPERATOR_PAUSE = "operator_pause"  # `digest pause`, the dashboard's button
    REFUSALS = "refusals"  # paused: recipients refused in a row (the server refuses the sender)
    TRANSPORT_ERRORS = "transport_errors"  # paused: transport failures in a row
    TRANSPORT_ERROR = "transport_error"  # still ready: the last batch lost its connection
    CANCELLED = "cancelled"  # `digest cancel`


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    LEASED = "leased"  # claimed by a worker until lease_until
    DEFERRED = "deferred"  # 4xx: tried again at next_attempt_at
    SENT = "sent"
    BOUNCED = "bounced"  # 5xx: address suppressed
    FAILED = "failed"  # gave up after max attempts, or the message could not be built
    SKIPPED = "skipped"  # unsubscribed or suppressed after the ledger was written


FINAL_DELIVERY_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.FAILED,
    DeliveryStatus.SKIPPED,
)


class Section(Base):
    __tablename__ = "sections"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id"))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_fetched_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_found: Mapped[int] = mapped_column(Integer, default=0)
    last_new: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: A failing source is not fetched again before this time (backoff).
    next_fetch_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: The operator allowed fetching from loopback, private or link-local addresses.
    allow_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Item category -> section slug; items matching none go to ``section_id``.
    category_map: Mapped[dict[str, str] | None] = mapped_column(JSON)
    #: Which identity to trust for de-duplication: "guid", "url" or "both".
    identity: Mapped[str] = mapped_column(String(10), default="both", server_default="both")
    #: False: kept with its articles' history, but not fetched.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    #: SHA-256 of the last body stored without error: the same bytes again are not re-parsed.
    body_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    section: Mapped[Section] = relationship()


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Identity: the feed's guid and the canonical URL are each unique, so the
    # same story reached through two feeds (or two runs) is one row.
    guid: Mapped[str | None] = mapped_column(String(1000), unique=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    headline: Mapped[str] = mapped_column(String(500))
    teaser: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Its place in its feed when first stored (0 = the top item): feeds list a desk's lead
    #: first, which ranking weighs. None for articles stored before it was kept.
    feed_position: Mapped[int | None] = mapped_column(Integer)

    section: Mapped[Section] = relationship()


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.ACTIVE
    )
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class MailingList(Base):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    send_at: Mapped[str] = mapped_column(String(5), default="07:00")
    per_section: Mapped[int] = mapped_column(Integer, default=5)
    from_address: Mapped[str | None] = mapped_column(String(320))
    from_name: Mapped[str | None] = mapped_column(String(200))
    #: Language of dates and section names in the digest (a Babel locale, e.g. "en", "ur").
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    #: Subject template, e.g. "{site} — {date}: {top headline}"; None: the default.
    subject_template: Mapped[str | None] = mapped_column(String(300))
    #: A folder of the list's own email templates; None: the shared ones.
    template_dir: Mapped[str | None] = mapped_column(String(1000))
    #: False: no scheduled or manual sends; editions and the ledger are kept.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: False: not offered on the public index page (its subscribe link still works).
    public: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    #: Show sections in the order of their recent click-through (when there is enough data),
    #: instead of the order they were added in.
    order_sections_by_clicks: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: A reader whose chosen sections have nothing in an edition: "skip" (no mail that day)
    #: or "all" (the whole edition instead).
    when_empty: Mapped[str] = mapped_column(String(8), default="skip", server_default="skip")
    #: The publisher's tracking tags added to article links ("utm_source=digest&..."; may
    #: hold {list} and {date}); None: links as the feed gave them.
    utm: Mapped[str | None] = mapped_column(String(500))
    #: An editor reviews each edition: it is built ``review_hours`` before the send time and
    #: held; ``unreviewed`` says what happens at the send time if nobody approved it:
    #: "send" (it goes as built) or "hold" (it waits for an approval).
    review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    review_hours: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    unreviewed: Mapped[str] = mapped_column(String(4), default="send", server_default="send")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    list_sections: Mapped[list[ListSection]] = relationship(
        order_by="ListSection.position", cascade="all, delete-orphan"
    )

    @property
    def sections(self) -> list[Section]:
        return [ls.section for ls in self.list_sections]


class ListSection(Base):
    """The sections a list carries, in the order its digest shows them."""

    __tablename__ = "list_sections"

    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"), primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)

    section: Mapped[Section] = relationship()


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("list_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        _enum(SubscriptionStatus), default=SubscriptionStatus.CONFIRMED
    )
    #: Section slugs this subscriber wants from the list; None means all of them.
    sections: Mapped[list[str] | None] = mapped_column(JSON)
    #: How the consent was given: "csv import", "cli", "web form", ...
    source: Mapped[str] = mapped_column(String(100), default="")
    #: The consent record of a web sign-up: the address it came from and the wording shown.
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    consent_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    subscriber: Mapped[Subscriber] = relationship()
    mailing_list: Mapped[MailingList] = relationship()


class Edition(Base):
    __tablename__ = "editions"
    __table_args__ = (UniqueConstraint("list_id", "edition_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    edition_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[EditionStatus] = mapped_column(_enum(EditionStatus))
    subject: Mapped[str] = mapped_column(String(500), default="")
    preheader: Mapped[str] = mapped_column(String(500), default="")
    #: [{"slug": ..., "article_ids": [...]}, ...] in the order the digest shows them.
    content: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Why it stopped (None: it did not); ``status_reason`` says it in words, with the detail.
    stop_reason: Mapped[StopReason | None] = mapped_column(_enum(StopReason), nullable=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    #: The span of publication times it offers, [start, end): from where the list's previous
    #: edition ended to its build (``digest.edition.select.edition_window``).
    window_start: Mapped[dt.datetime] = mapped_column(DateTime)
    window_end: Mapped[dt.datetime] = mapped_column(DateTime)
    #: Every article it offered (shown, or counted in a section's "more"): no other edition of
    #: the list offers them again. None: built before windows were stored (migration 0011),
    #: when an edition offered its day's articles that were in at its build (``created_at``).
    offered_ids: Mapped[list[int] | None] = mapped_column(JSON)
    #: Transport failures (connection lost, 421) in a row, and recipients refused in a row:
    #: either past its limit pauses the edition, since it means a problem with the sender.
    transport_error_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refusal_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When the current run of transport failures began (None: the last message went through):
    #: a run pauses the edition only once it is long in time as well as in count, so a relay's
    #: short outage is waited out by batches retrying every few seconds.
    transport_errors_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: The editor's note that opens the digest (plain text; None: no note).
    note: Mapped[str | None] = mapped_column(Text)
    #: Who approved a held edition, and when (None: not approved).
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: When a batch last claimed rows: the sweep restarts an edition that went quiet.
    last_claim_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    mailing_list: Mapped[MailingList] = relationship()


class Delivery(Base):
    """The ledger: one row per (edition, subscriber); the row, not the queue, decides."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        Index("ix_deliveries_claim", "edition_id", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    message_id: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: Attempts whose whole message went out but whose answer never came (the connection was
    #: lost, or timed out, after the final dot): the server may have taken it, so a recipient
    #: with this above 0 may have a second copy. Kept once the row is sent, for the operator.
    unanswered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    subscriber: Mapped[Subscriber] = relationship()


class ApiToken(Base):
    """A bearer token for the operator API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Suppression(Base):
    """Addresses never mailed again: hard bounces, complaints, operator blocks."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SoftBounce(Base):
    """A subscriber's run of editions that soft-bounced (mailbox full, deferred for days).

    One row per subscriber: the run's length and its last edition, so the same report twice
    counts once, and an edition delivered in between starts the run again.
    """

    __tablename__ = "soft_bounces"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    streak: Mapped[int] = mapped_column(Integer, default=0)
    last_edition_id: Mapped[int | None] = mapped_column(
        ForeignKey("editions.id", ondelete="SET NULL")
    )
    last_detail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ConsentEvent(Base):
    """Append-only history of what a subscriber asked for: every sign-up form, confirmation,
    unsubscribe and preferences change, with when, from where and the wording shown. Rows are
    never updated, so a re-submitted form cannot rewrite the consent someone gave."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_subscriber", "subscriber_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    #: None: the event concerns every list (e.g. "unsubscribe from all").
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id"))
    #: "signup", "confirm", "unsubscribe", "unsubscribe-all", "join", "leave".
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    #: Which form or link: "web form", "confirm link", "one-click", "preferences page", ...
    source: Mapped[str] = mapped_column(String(100), default="")
    #: The consent wording shown, for sign-ups.
    wording: Mapped[str | None] = mapped_column(Text)
    #: Section slugs chosen on a sign-up form; None: all of them.
    sections: Mapped[list[str] | None] = mapped_column(JSON)


class Throttle(Base):
    """A fixed-window counter shared by every web process: confirmation mails per address,
    sign-ups per client IP, failed dashboard logins. The key is hashed so the table holds no
    addresses."""

    __tablename__ = "throttles"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class OperatorSession(Base):
    """One dashboard login. The cookie carries a random id whose SHA-256 is stored here;
    logging out ends the row, so a copy of the cookie taken earlier stops working."""

    __tablename__ = "operator_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    #: The named user who signed in; None: the built-in operator (DIGEST_OPERATOR_PASSWORD).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class User(Base):
    """A named dashboard login with a role (operator, editor, viewer). Only a salted scrypt
    hash of the password is stored; a disabled user keeps the row (who did what stays
    readable) but cannot sign in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Click(Base):
    """One fetch of a tracked link (an article) or of the open pixel (no article) from one
    delivered message. Fetches a scanner made (at delivery, or a burst of links at once) are
    kept, marked, so the figures can leave them out and the marking can be audited."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_delivery_at", "delivery_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    #: None: the open pixel.
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    is_scanner: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ReviewEvent(Base):
    """One editor's change to a held edition (drop, pin, move, teaser, note, approve), or its
    release at the send time: who, when, and what (``detail``), appended, never changed."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    edition_id: Mapped[int] = mapped_column(
        ForeignKey("editions.id", ondelete="CASCADE"), index=True
    )
    who: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
