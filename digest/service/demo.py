"""The bundled sample site on the embedded default: the settings the demo runs with, and the
sample sections, feeds, lists and subscribers added (again: every step is an idempotent
add-or-update)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digest import sample
from digest.config import Settings
from digest.errors import CsvRowError
from digest.service import catalog
from digest.store.db import Database

__all__ = ["DemoSite", "demo_settings", "install_sample", "sample_site"]

DEFAULT_SITE_NAME = Settings.site_name


@dataclass(frozen=True)
class DemoSite:
    """What ``install_sample`` set up: the publisher's name, the feed files, the lists' slugs,
    and the bad rows of the sample CSVs (none, unless someone edited them)."""

    name: str
    feeds: dict[str, Path]
    lists: list[str]
    errors: list[tuple[str, CsvRowError]]


def sample_site() -> sample.SampleSite:
    return sample.load_site()


def demo_settings(settings: Settings) -> Settings:
    """The sample publisher's name and address where the operator configured none; always
    in-process, and to the outbox or the demo's own SMTP server (DIGEST_DEMO_SMTP_URL, a
    Mailpit): never through the relay that mails real subscribers."""
    site = sample.load_site()
    changes: dict[str, object] = {"broker_url": None, "smtp_url": settings.demo_smtp_url}
    if settings.site_name == DEFAULT_SITE_NAME:
        changes.update(
            site_name=site.name,
            site_url=site.url,
            postal_address=site.postal_address,
            from_address="digest@meridian.example",
        )
    return settings.replace(**changes)


def install_sample(db: Database, directory: Path) -> DemoSite:
    """Write the sample feeds into ``directory`` and add the sample site to the database."""
    site = sample.load_site()
    feeds = sample.write_feeds(directory)
    errors: list[tuple[str, CsvRowError]] = []
    with db.session() as session:
        for slug, name in site.sections:
            catalog.add_section(session, slug, name)
            catalog.add_source(session, str(feeds[slug]), slug, f"{site.name}: {name}")
        for spec in sample.LISTS:
            mailing_list, _ = catalog.add_list(
                session,
                spec["slug"],
                spec["name"],
                spec["sections"],
                timezone=sample.TIMEZONE,
                send_at="07:00",
                per_section=spec["per_section"],
            )
            report = catalog.import_subscribers(session, mailing_list, spec["csv"])
            errors += [(spec["csv"].name, error) for error in report.errors]
    return DemoSite(site.name, feeds, [spec["slug"] for spec in sample.LISTS], errors)
