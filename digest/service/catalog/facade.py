"""The catalog as the faces use it: each operation opens its own transaction, applies the
checks of ``validation``, and returns read-only views (``views``), so the CLI, the API, the
dashboard and the web app hold no session and import no table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from digest import audience
from digest.config import Settings
from digest.errors import NotFoundError
from digest.service.catalog import lists, records, sources, subscribers, validation
from digest.service.catalog.sources import FeedCheck
from digest.service.catalog.subscribers import ImportReport
from digest.service.catalog.views import (
    ListView,
    SectionView,
    SourceView,
    SubscriberHistory,
    SubscriberView,
    SubscriptionView,
    SuppressionView,
)
from digest.store.db import Database
from digest.store.models import MailingList, Section, Source, Subscriber, Subscription

__all__ = ["Catalog"]


class Catalog:
    """Sections, sources, lists and the people on them, for the faces."""

    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._database().session() as session:
            yield session

    # -- sections -------------------------------------------------------------------------
    def sections(self) -> list[SectionView]:
        with self._session() as session:
            return [
                SectionView.of(s) for s in session.scalars(select(Section).order_by(Section.slug))
            ]

    def add_section(self, slug: str, name: str) -> tuple[SectionView, bool]:
        """Create the section, or rename it; returns (section, created)."""
        with self._session() as session:
            section, created = lists.add_section(session, slug, name)
            return SectionView.of(section), created

    # -- sources ----------------------------------------------------------------------------
    def sources(self) -> list[SourceView]:
        with self._session() as session:
            query = select(Source).options(selectinload(Source.section)).order_by(Source.id)
            return [SourceView.of(source) for source in session.scalars(query)]

    def source(self, source_id: int) -> SourceView:
        with self._session() as session:
            return SourceView.of(sources.get_source(session, source_id))

    def source_at(self, location: str) -> SourceView | None:
        """The source stored for ``location`` (a path compared in its absolute form)."""
        with self._session() as session:
            found = sources.find_source(session, location)
            return SourceView.of(found) if found else None

    @staticmethod
    def check_location(location: str) -> str:
        """``location`` as a source stores it; InputError for one that is no URL or feed file."""
        return validation.check_location(location)[0]

    def check_feed(self, location: str, *, allow_private: bool = False) -> FeedCheck:
        """Fetch and parse the feed once, storing nothing, and say what it holds."""
        return sources.check_feed(self.settings, location, allow_private=allow_private)

    @staticmethod
    def private_address(location: str) -> str | None:
        return sources.private_address(location)

    def add_source(
        self,
        location: str,
        section_slug: str,
        name: str | None = None,
        *,
        category_map: str | dict[str, str] | None = None,
        identity: str | None = None,
        allow_private: bool | None = None,
    ) -> tuple[SourceView, bool]:
        """Register a feed; ``category_map`` as a dict or as ``World=international,...``."""
        if isinstance(category_map, str):
            category_map = validation.parse_category_map(category_map)
        with self._session() as session:
            source, created = sources.add_source(
                session,
                location,
                section_slug,
                name,
                category_map=category_map,
                identity=identity,
                allow_private=allow_private,
            )
            return SourceView.of(source), created

    def set_source_enabled(self, source_id: int, enabled: bool) -> SourceView:
        with self._session() as session:
            return SourceView.of(sources.set_source_enabled(session, source_id, enabled))

    def remove_source(self, source_id: int) -> tuple[SourceView, int]:
        """Delete a source; returns (the source as it was, its articles kept)."""
        with self._session() as session:
            source = sources.get_source(session, source_id)
            view = SourceView.of(source)
            _, kept = sources.remove_source(session, source_id)
            return view, kept

    # -- lists ------------------------------------------------------------------------------
    def lists(self, *, offered: bool = False) -> list[ListView]:
        """Every list by slug, with its audience; ``offered``: only the enabled, public ones a
        visitor may join from the index and preferences pages, by name."""
        with self._session() as session:
            query = select(MailingList).options(selectinload(MailingList.list_sections))
            if offered:
                query = query.where(MailingList.public, MailingList.enabled).order_by(
                    MailingList.name
                )
            else:
                query = query.order_by(MailingList.slug)
            found = list(session.scalars(query))
            counts = audience.list_audiences(session, [m.id for m in found])
            return [ListView.of(m, counts.get(m.id)) for m in found]

    def get_list(self, slug: str) -> ListView:
        with self._session() as session:
            mailing_list = lists.get_list(session, slug)
            counts = audience.list_audiences(session, [mailing_list.id])
            return ListView.of(mailing_list, counts.get(mailing_list.id))

    def add_list(
        self, slug: str, name: str, section_slugs: list[str], **options: Any
    ) -> tuple[ListView, bool]:
        """Create or update a list (see ``lists.add_list`` for the options)."""
        with self._session() as session:
            mailing_list, created = lists.add_list(session, slug, name, section_slugs, **options)
            counts = audience.list_audiences(session, [mailing_list.id])
            return ListView.of(mailing_list, counts.get(mailing_list.id)), created

    def edit_list(
        self,
        slug: str,
        *,
        name: str | None = None,
        section_slugs: list[str] | None = None,
        **settings: Any,
    ) -> tuple[ListView, list[str]]:
        """Change only the given settings of an existing list (see ``lists.edit_list``);
        returns the list and the names of the settings changed."""
        with self._session() as session:
            mailing_list, given = lists.edit_list(
                session, slug, name=name, section_slugs=section_slugs, **settings
            )
            counts = audience.list_audiences(session, [mailing_list.id])
            return ListView.of(mailing_list, counts.get(mailing_list.id)), given

    def set_list_enabled(self, slug: str, enabled: bool) -> ListView:
        with self._session() as session:
            return ListView.of(lists.set_list_enabled(session, slug, enabled))

    def set_list_public(self, slug: str, public: bool) -> ListView:
        with self._session() as session:
            return ListView.of(lists.set_list_public(session, slug, public))

    def set_list_review(
        self,
        slug: str,
        *,
        review: bool | None = None,
        review_hours: int | None = None,
        unreviewed: str | None = None,
    ) -> ListView:
        """Change a list's review settings (see ``lists.set_list_review``)."""
        with self._session() as session:
            mailing_list = lists.set_list_review(
                session, slug, review=review, review_hours=review_hours, unreviewed=unreviewed
            )
            return ListView.of(mailing_list)

    def remove_list(self, slug: str) -> ListView:
        with self._session() as session:
            mailing_list = lists.get_list(session, slug)
            view = ListView.of(mailing_list)
            lists.remove_list(session, slug)
            return view

    def eligible_count(self, slug: str) -> int:
        """How many subscribers an edition of the list built now would go to."""
        with self._session() as session:
            return audience.eligible_count(session, lists.get_list(session, slug).id)

    # -- subscribers --------------------------------------------------------------------------
    def add_subscriber(
        self,
        list_slug: str,
        email: str,
        name: str = "",
        *,
        timezone: str | None = None,
        source: str = "operator",
    ) -> tuple[SubscriberView, bool]:
        """Subscribe ``email`` (confirmed: the operator vouches for consent); returns
        (subscriber, newly subscribed). ``timezone`` sets their own send time's zone."""
        if timezone is not None:
            validation.check_zone(validation.check_text(timezone, "the time zone", 64))
        with self._session() as session:
            mailing_list = lists.get_list(session, list_slug)
            subscriber, added = subscribers.subscribe(
                session, mailing_list, email, name, source=source
            )
            if timezone is not None:
                subscriber.timezone = timezone
            session.flush()
            return self._people(session, [subscriber])[0], added

    def subscriber(self, subscriber_id: int) -> SubscriberView:
        with self._session() as session:
            found = session.get(Subscriber, subscriber_id)
            if found is None:
                raise NotFoundError("subscriber", subscriber_id)
            return self._people(session, [found])[0]

    def subscribers(
        self, list_slug: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[SubscriberView]:
        """People by address (of one list, or all), each with every subscription."""
        with self._session() as session:
            query = select(Subscriber).order_by(Subscriber.email)
            if list_slug:
                mailing_list = lists.get_list(session, list_slug)
                query = query.join(Subscription, Subscription.subscriber_id == Subscriber.id).where(
                    Subscription.list_id == mailing_list.id
                )
            people = list(session.scalars(query.limit(limit).offset(offset)))
            return self._people(session, people)

    def import_subscribers(
        self,
        list_slug: str,
        source: Path | str | IO[bytes] | IO[str],
        *,
        label: str | None = None,
    ) -> ImportReport:
        """Import a CSV (a path or a stream): good rows imported, bad ones reported by line."""
        with self._session() as session:
            mailing_list = lists.get_list(session, list_slug)
            return subscribers.import_subscribers(session, mailing_list, source, source_label=label)

    def unsubscribe_everywhere(self, subscriber_id: int, *, source: str) -> SubscriberView:
        """The operator unsubscribes someone from every list (recorded as their request, with
        ``source``). The record stays: it is the proof of what they asked for, and it keeps a
        later import from subscribing them again unnoticed."""
        with self._session() as session:
            found = session.get(Subscriber, subscriber_id)
            if found is None:
                raise NotFoundError("subscriber", subscriber_id)
            audience.unsubscribe(session, subscriber_id, None, source=source)
            session.flush()
            return self._people(session, [found])[0]

    # -- the dashboard's management pages -------------------------------------------------
    def remove_section(self, slug: str) -> str:
        """Delete a section no source or list uses; returns its name."""
        with self._session() as session:
            return records.remove_section(session, slug)

    def find_subscribers(self, query: str, *, limit: int = 200) -> list[SubscriberView]:
        """People whose address or name contains ``query``, each with their subscriptions."""
        with self._session() as session:
            return self._people(session, records.find_subscribers(session, query, limit))

    def subscriber_history(self, subscriber_id: int) -> SubscriberHistory:
        with self._session() as session:
            return records.subscriber_history(session, subscriber_id)

    def suppressions(self) -> list[SuppressionView]:
        with self._session() as session:
            return records.suppressions(session)

    def add_suppression(self, email: str, reason: str = "") -> tuple[str, bool]:
        """Never mail ``email`` again; returns (the address as stored, newly suppressed)."""
        with self._session() as session:
            return records.add_suppression(session, email, reason)

    def remove_suppression(self, email: str) -> None:
        with self._session() as session:
            records.remove_suppression(session, email)

    def troubled_subscribers(self) -> list[SubscriberView]:
        """Subscribers who bounced, or are in a run of soft bounces."""
        with self._session() as session:
            return self._people(session, records.troubled_subscribers(session))

    @staticmethod
    def _people(session: Session, people: list[Subscriber]) -> list[SubscriberView]:
        """Each subscriber with each of their subscriptions, in two queries."""
        by_subscriber: dict[int, dict[str, SubscriptionView]] = {}
        rows = session.execute(
            select(Subscription, MailingList.slug)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id.in_([p.id for p in people]))
        )
        for subscription, slug in rows:
            by_subscriber.setdefault(subscription.subscriber_id, {})[slug] = SubscriptionView.of(
                subscription, slug
            )
        return [SubscriberView.of(p, by_subscriber.get(p.id, {})) for p in people]
