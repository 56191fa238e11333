"""What the faces see of the catalog: plain, frozen records read from the tables, so a page or
a command formats them without holding a database session or an ORM object."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from digest.audience import ListAudience
from digest.store.models import (
    MailingList,
    Section,
    Source,
    Subscriber,
    Subscription,
    Suppression,
)

__all__ = [
    "ConsentRow",
    "DeliveryRow",
    "ListView",
    "SectionView",
    "SourceView",
    "SubscriberHistory",
    "SubscriberView",
    "SubscriptionView",
    "SuppressionView",
]


@dataclass(frozen=True)
class SectionView:
    id: int
    slug: str
    name: str

    @classmethod
    def of(cls, section: Section) -> SectionView:
        return cls(section.id, section.slug, section.name)


@dataclass(frozen=True)
class SourceView:
    """A feed source and its health."""

    id: int
    url: str
    name: str
    section_slug: str
    section_name: str
    enabled: bool
    allow_private: bool
    identity: str
    category_map: dict[str, str]
    last_fetched_at: dt.datetime | None
    last_status: int | None
    last_found: int
    last_new: int
    consecutive_errors: int
    last_error: str | None
    next_fetch_at: dt.datetime | None

    @classmethod
    def of(cls, source: Source) -> SourceView:
        return cls(
            id=source.id,
            url=source.url,
            name=source.name,
            section_slug=source.section.slug,
            section_name=source.section.name,
            enabled=source.enabled,
            allow_private=source.allow_private,
            identity=source.identity,
            category_map=dict(source.category_map or {}),
            last_fetched_at=source.last_fetched_at,
            last_status=source.last_status,
            last_found=source.last_found or 0,
            last_new=source.last_new or 0,
            consecutive_errors=source.consecutive_errors or 0,
            last_error=source.last_error,
            next_fetch_at=source.next_fetch_at,
        )


@dataclass(frozen=True)
class ListView:
    """A mailing list's settings, its sections in order, and its audience."""

    id: int
    slug: str
    name: str
    sections: tuple[SectionView, ...]
    timezone: str
    send_at: str
    per_section: int
    from_address: str | None
    from_name: str | None
    language: str
    subject_template: str | None
    template_dir: str | None
    enabled: bool
    public: bool
    order_sections_by_clicks: bool
    #: What a reader whose sections have nothing gets: "skip" (no mail) or "all".
    when_empty: str = "skip"
    #: The tracking tags added to article links ("" none).
    utm: str = ""
    #: An editor reviews each edition, built ``review_hours`` before the send time;
    #: ``unreviewed``: "send" (goes as built at the send time) or "hold" (until approved).
    review: bool = False
    review_hours: int = 2
    unreviewed: str = "send"
    audience: ListAudience = field(default_factory=ListAudience)

    @property
    def section_slugs(self) -> list[str]:
        return [s.slug for s in self.sections]

    @classmethod
    def of(cls, mailing_list: MailingList, audience: ListAudience | None = None) -> ListView:
        return cls(
            id=mailing_list.id,
            slug=mailing_list.slug,
            name=mailing_list.name,
            sections=tuple(SectionView.of(s) for s in mailing_list.sections),
            timezone=mailing_list.timezone,
            send_at=mailing_list.send_at,
            per_section=mailing_list.per_section,
            from_address=mailing_list.from_address,
            from_name=mailing_list.from_name,
            language=mailing_list.language,
            subject_template=mailing_list.subject_template,
            template_dir=mailing_list.template_dir,
            enabled=mailing_list.enabled,
            public=mailing_list.public,
            order_sections_by_clicks=mailing_list.order_sections_by_clicks,
            when_empty=mailing_list.when_empty or "skip",
            utm=mailing_list.utm or "",
            review=mailing_list.review,
            review_hours=mailing_list.review_hours,
            unreviewed=mailing_list.unreviewed,
            audience=audience or ListAudience(),
        )


@dataclass(frozen=True)
class SubscriptionView:
    list_slug: str
    status: str
    sections: list[str] | None
    source: str
    created_at: dt.datetime
    confirmed_at: dt.datetime | None

    @classmethod
    def of(cls, subscription: Subscription, list_slug: str) -> SubscriptionView:
        return cls(
            list_slug=list_slug,
            status=subscription.status.value,
            sections=list(subscription.sections) if subscription.sections else None,
            source=subscription.source,
            created_at=subscription.created_at,
            confirmed_at=subscription.confirmed_at,
        )


@dataclass(frozen=True)
class SubscriberView:
    """A person and their subscriptions (by list slug)."""

    id: int
    email: str
    name: str
    status: str
    timezone: str | None
    created_at: dt.datetime
    lists: dict[str, SubscriptionView] = field(default_factory=dict)

    def state_on(self, list_slug: str) -> str:
        """Their state on one list as an operator reads it: the subscriber's own status when it
        is not active (bounced, unsubscribed from everything), else the subscription's."""
        if self.status != "active":
            return self.status
        found = self.lists.get(list_slug)
        return found.status if found else "not subscribed"

    @classmethod
    def of(
        cls, subscriber: Subscriber, lists: dict[str, SubscriptionView] | None = None
    ) -> SubscriberView:
        return cls(
            id=subscriber.id,
            email=subscriber.email,
            name=subscriber.name,
            status=subscriber.status.value,
            timezone=subscriber.timezone,
            created_at=subscriber.created_at,
            lists=lists or {},
        )


@dataclass(frozen=True)
class DeliveryRow:
    """One edition's message to one subscriber, as their history shows it."""

    edition_id: int
    list_slug: str
    day: dt.date
    status: str
    attempts: int
    sent_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ConsentRow:
    at: dt.datetime
    action: str
    list_slug: str | None
    source: str
    ip: str | None


@dataclass(frozen=True)
class SubscriberHistory:
    """What happened to one subscriber: deliveries and consent events (newest first), their
    run of soft bounces and whether the address is suppressed."""

    deliveries: tuple[DeliveryRow, ...]
    consent: tuple[ConsentRow, ...]
    soft_bounces: int
    soft_bounce_detail: str | None
    suppressed: bool


@dataclass(frozen=True)
class SuppressionView:
    """An address never mailed again; ``forgotten``: a person erased, kept only as a hash."""

    email: str
    reason: str
    created_at: dt.datetime

    @property
    def forgotten(self) -> bool:
        return "@" not in self.email

    @property
    def kind(self) -> str:
        for word in ("bounced", "complaint"):
            if self.reason.startswith(word):
                return word
        return "forgotten" if self.forgotten else "operator"

    @classmethod
    def of(cls, row: Suppression) -> SuppressionView:
        return cls(row.email, row.reason, row.created_at)
