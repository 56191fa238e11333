"""``digest init``, ``sections``, ``sources`` and ``lists``: setting up the site."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from digest.cli.context import App, pass_app
from digest.cli.output import plural
from digest.errors import InputError
from digest.service import catalog
from digest.service.catalog.validation import IDENTITIES, one_line


@click.command()
@pass_app
def init(app: App) -> None:
    """Create the database, or upgrade it to the current schema."""
    click.echo(f"database ready: {app.core.upgrade_database()}")


@click.group()
def sections() -> None:
    """The site's sections (International, National, ...)."""


@sections.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Name shown in the digest, e.g. 'Health & Education'.")
@pass_app
def sections_add(app: App, slug: str, name: str) -> None:
    """Add a section, or rename an existing one."""
    section, created = app.core.catalog.add_section(slug, name)
    click.echo(f"{'added' if created else 'updated'} section {section.slug}: {section.name}")


@sections.command("list")
@pass_app
def sections_list(app: App) -> None:
    """Show the sections."""
    for section in app.core.catalog.sections():
        click.echo(f"{section.slug:<24} {section.name}")


@click.group()
def sources() -> None:
    """The feeds articles are gathered from."""


@sources.command("add")
@click.argument("url_or_path")
@click.option("--section", "section_slug", required=True, help="Section its articles go to.")
@click.option(
    "--name", help="A name to recognise it by (default: the feed's title, else the file or URL)."
)
@click.option(
    "--category-map",
    help="Item categories to sections, e.g. 'World=international,Pakistan=national'; "
    "items matching none go to --section.",
)
@click.option(
    "--identity",
    type=click.Choice(IDENTITIES),
    help="What makes two items the same story: guid, url, or both (default).",
)
@click.option(
    "--allow-private/--public-only",
    default=None,
    help="Allow fetching from loopback, private and link-local addresses (default: refused).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Add the source only if the feed can be fetched and parsed now (default: add it and "
    "warn).",
)
@click.option("--no-fetch", is_flag=True, help="Do not fetch the feed once to check it.")
@pass_app
def sources_add(
    app: App,
    url_or_path: str,
    section_slug: str,
    name: str | None,
    category_map: str | None,
    identity: str | None,
    allow_private: bool | None,
    strict: bool,
    no_fetch: bool,
) -> None:
    """Add an RSS, Atom or JSON feed by http(s):// or file:// URL or local path.

    The feed is fetched and parsed once (nothing stored) to say what it holds; a feed that
    cannot be read is still added, with a warning, unless --strict. A web page's address
    finds the feed the page announces (its <link rel="alternate">)."""
    # A location that is no URL or file is one line now, before anything is fetched.
    site = app.core.catalog
    location = site.check_location(url_or_path)
    if allow_private is None:
        known = site.source_at(location)
        private_ok = bool(known and known.allow_private)
    else:
        private_ok = allow_private
    # Fetched before anything is written: a slow feed must not hold the database's write lock.
    checked = None if no_fetch else site.check_feed(location, allow_private=private_ok)
    if strict and checked is not None and checked.error is not None:
        raise InputError(f"source not added: {checked.describe()}")
    if checked is not None and checked.found_url is not None:
        # An HTML page: the feed it announces is the source, not the page.
        click.echo(f"found the feed {checked.found_url} on {location}")
        location = checked.found_url
    if name is None and checked is not None and checked.title and site.source_at(location) is None:
        # A new source without a name is called what the feed calls itself.
        name = checked.title
    source, created = site.add_source(
        location,
        section_slug,
        name,
        category_map=category_map,
        identity=identity,
        allow_private=allow_private,
    )
    location = source.url
    verb = "added" if created else "updated"
    click.echo(f"{verb} source {source.id} ({source.name}) -> {section_slug}")
    if not private_ok:
        address = site.private_address(location)
        if address is not None:
            click.echo(
                f"warning: {location} is at {address}, a loopback or private address: ingest "
                "refuses to fetch it; add it again with --allow-private if you trust it",
                err=True,
            )
    if checked is not None:
        if checked.error is not None or not checked.items:
            click.echo(f"warning: {checked.describe()}", err=True)
        else:
            click.echo(f"  {checked.describe()}")


@sources.command("disable")
@click.argument("source_id", type=int)
@pass_app
def sources_disable(app: App, source_id: int) -> None:
    """Stop fetching a source; its articles and past editions are kept."""
    source = app.core.catalog.set_source_enabled(source_id, False)
    click.echo(f"disabled source {source.id} ({source.name}): not fetched until enabled")


@sources.command("enable")
@click.argument("source_id", type=int)
@pass_app
def sources_enable(app: App, source_id: int) -> None:
    """Fetch a disabled source again, from the next ingest."""
    source = app.core.catalog.set_source_enabled(source_id, True)
    click.echo(f"enabled source {source.id} ({source.name})")


@sources.command("remove")
@click.argument("source_id", type=int)
@pass_app
def sources_remove(app: App, source_id: int) -> None:
    """Delete a source; the articles it brought stay, with the editions that carried them."""
    source, kept = app.core.catalog.remove_source(source_id)
    click.echo(f"removed source {source_id} ({source.name}); {kept} of its articles kept")


@sources.command("list")
@pass_app
def sources_list(app: App) -> None:
    """Show each source's section, last fetch, HTTP status, counts, errors and next try."""

    def when(value: dt.datetime | None, default: str) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else default

    click.echo(
        f"{'id':>4}  {'section':<18} {'last fetch (UTC)':<17} {'http':>4} {'found':>5} "
        f"{'new':>4} {'errors':>6}  {'next try (UTC)':<17} source"
    )
    for source in app.core.catalog.sources():
        status = str(source.last_status) if source.last_status else "-"
        next_try = when(source.next_fetch_at, "now") if source.enabled else "disabled"
        fetched = when(source.last_fetched_at, "never")
        click.echo(
            f"{source.id:>4}  {source.section_slug:<18} {fetched:<17} "
            f"{status:>4} {source.last_found:>5} {source.last_new:>4} "
            f"{source.consecutive_errors:>6}  {next_try:<17} {source.name}"
        )
        if source.category_map:
            pairs = ", ".join(f"{k}={v}" for k, v in source.category_map.items())
            click.echo(f"{'':>6}categories: {pairs}")
        if source.last_error:
            click.echo(f"{'':>6}last error: {source.last_error}")


@click.group("lists")
def lists_group() -> None:
    """Mailing lists: which sections, when, and for whom."""


def _list_options(command: Any) -> Any:
    """The list settings ``lists add`` and ``lists edit`` both take (none required here)."""
    options = [
        click.option(
            "--timezone", help="IANA zone whose calendar day an edition covers (default UTC)."
        ),
        click.option("--send-at", help="Local time HH:MM the scheduler sends at (default 07:00)."),
        click.option(
            "--per-section",
            type=click.IntRange(1, catalog.MAX_PER_SECTION),
            help="Most articles per section (default 5).",
        ),
        click.option(
            "--from-address", help="From address for this list (default: DIGEST_FROM_ADDRESS)."
        ),
        click.option("--from-name", help="From name for this list (default: the site name)."),
        click.option(
            "--language",
            help="Language of the date and the digest's own words: en, ur, ar... (default en).",
        ),
        click.option(
            "--subject",
            help='Subject template (default "{site} — {date}: {top headline}"; also {list}; '
            '"" resets).',
        ),
        click.option(
            "--template-dir",
            help="Folder with this list's email/digest.html and email/digest.txt "
            '(missing files come from the default templates; "" resets).',
        ),
        click.option(
            "--order-sections-by-clicks/--order-sections-as-listed",
            default=None,
            help="Show sections in the order of their click-through over the last 28 days "
            "(once enough readers clicked), or in the --sections order (the default).",
        ),
        click.option(
            "--when-empty",
            type=click.Choice(catalog.WHEN_EMPTY),
            help="A reader whose chosen sections have nothing today: skip (no mail that day, "
            "the default) or all (the whole edition instead).",
        ),
        click.option(
            "--utm",
            help='Tracking tags added to article links, e.g. "utm_source=digest&utm_medium='
            'email&utm_campaign={list}" ({list}, {date} filled in; "" removes them).',
        ),
        click.option(
            "--review/--no-review",
            default=None,
            help="Build each edition --review-hours before the send time and hold it for an "
            "editor's review (`digest review`); off by default.",
        ),
        click.option(
            "--review-hours",
            type=click.IntRange(0, catalog.MAX_REVIEW_HOURS),
            help="Hours before the send time a reviewed list's edition is built (default 2).",
        ),
        click.option(
            "--unreviewed",
            type=click.Choice(catalog.UNREVIEWED),
            help="At the send time, an edition nobody approved: send (goes as built, the "
            "default) or hold (waits for an approval).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _list_said(mailing_list: Any, slugs: list[str]) -> str:
    extra = "".join(
        f", {label} {value}"
        for label, value in (
            ("language", mailing_list.language),
            ("templates in", mailing_list.template_dir),
        )
        if value and value != "en"
    )
    if mailing_list.when_empty != "skip":
        extra += f", when empty: {mailing_list.when_empty}"
    if mailing_list.utm:
        extra += f", tags {mailing_list.utm}"
    if mailing_list.review:
        extra += (
            f", reviewed {mailing_list.review_hours} h ahead, unreviewed: {mailing_list.unreviewed}"
        )
    return (
        f"{', '.join(slugs)}; {mailing_list.timezone}, sends at {mailing_list.send_at}, "
        f"{mailing_list.per_section} per section{extra}"
    )


def _slugs(section_csv: str) -> list[str]:
    return [s.strip() for s in section_csv.split(",") if s.strip()]


@lists_group.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The list's name, shown to subscribers.")
@click.option(
    "--sections",
    "section_csv",
    required=True,
    help="Section slugs in the order the digest shows them: a,b,c.",
)
@_list_options
@pass_app
def lists_add(app: App, slug: str, name: str, section_csv: str, **options: Any) -> None:
    """Add a list, or change an existing one."""
    slugs = _slugs(section_csv)
    mailing_list, created = app.core.catalog.add_list(slug, name, slugs, **options)
    click.echo(
        f"{'added' if created else 'updated'} list {mailing_list.slug}: "
        f"{_list_said(mailing_list, slugs)}"
    )


@lists_group.command("edit")
@click.argument("slug")
@click.option("--name", help="The list's name, shown to subscribers.")
@click.option(
    "--sections", "section_csv", help="Section slugs in the order the digest shows them: a,b,c."
)
@_list_options
@pass_app
def lists_edit(
    app: App, slug: str, name: str | None, section_csv: str | None, **options: Any
) -> None:
    """Change only the given settings of a list, e.g. `lists edit daily --per-section 3`."""
    slugs = _slugs(section_csv) if section_csv is not None else None
    mailing_list, given = app.core.catalog.edit_list(
        slug, name=name, section_slugs=slugs, **options
    )
    click.echo(
        f"changed list {mailing_list.slug} "
        f"({', '.join('--' + name.replace('_', '-') for name in given)}): "
        f"{_list_said(mailing_list, mailing_list.section_slugs)}"
    )


@lists_group.command("list")
@pass_app
def lists_list(app: App) -> None:
    """Show the lists with how many subscribers an edition built now would go to."""
    for mailing_list in app.core.catalog.lists():
        flags = "".join(
            f" ({flag})"
            for flag, on in (
                ("disabled", not mailing_list.enabled),
                ("hidden", not mailing_list.public),
            )
            if on
        )
        click.echo(
            f"{mailing_list.slug:<16} {plural(mailing_list.audience.eligible, 'subscriber'):>18}  "
            f"{mailing_list.timezone} {mailing_list.send_at}  "
            f"[{','.join(mailing_list.section_slugs)}]  {mailing_list.name}{flags}"
        )
        if mailing_list.when_empty != "skip":
            click.echo(f"{'':18}when a reader's sections have nothing: {mailing_list.when_empty}")
        if mailing_list.utm:
            click.echo(f"{'':18}article links tagged {mailing_list.utm}")


def _list_switch(name: str, doc: str, change: str, value: bool, said: str) -> None:
    @lists_group.command(name, help=doc)
    @click.argument("slug")
    @pass_app
    def command(app: App, slug: str) -> None:
        site = app.core.catalog
        setter = site.set_list_enabled if change == "enabled" else site.set_list_public
        mailing_list = setter(slug, value)
        click.echo(f"list {mailing_list.slug}: {said}")


_list_switch(
    "disable",
    "Stop a list's sends (scheduled and manual); its editions and subscribers are kept.",
    "enabled",
    False,
    "disabled: no scheduled or manual sends until enabled",
)
_list_switch("enable", "Send a disabled list again.", "enabled", True, "enabled")
_list_switch(
    "hide",
    "Take a list off the public index page (its subscribe page keeps working).",
    "public",
    False,
    "hidden from the public index page",
)
_list_switch("show", "Show a hidden list on the public index page.", "public", True, "shown")


@lists_group.command("remove")
@click.argument("slug")
@pass_app
def lists_remove(app: App, slug: str) -> None:
    """Delete a list that was never sent or subscribed to (else: disable and hide it)."""
    app.core.catalog.remove_list(slug)
    click.echo(f"removed list {slug}")


#: (setting, flag, prompt, what the comment above it in digest.toml says)
SETUP_FIELDS: list[tuple[str, str, str, str]] = [
    ("site_name", "--site-name", "Publisher's name", "The publisher, shown in every digest's "
     "header and footer and as the From name."),
    ("site_url", "--site-url", "Publisher's website", "The publisher's website: the digest's "
     "masthead links to it."),
    ("postal_address", "--postal-address", "Postal address (printed in every footer)",
     "The postal address in every digest's footer (CAN-SPAM and most anti-spam laws want one)."),
    ("from_address", "--from-address", "From address", "The From and envelope address of "
     "every digest: an address of your domain, whose DNS vouches for this sender."),
    ("base_url", "--base-url", "Public URL of this Digest's web app", "The public URL of "
     "`digest web`: unsubscribe, preference and archive links in every email start with it."),
]  # fmt: skip


@click.command()
@click.option("--site-name", help="The publisher's name, e.g. 'The Daily Meridian'.")
@click.option("--site-url", help="The publisher's website, e.g. https://news.example.com.")
@click.option("--postal-address", help="The postal address printed in every digest's footer.")
@click.option("--from-address", help="The From address, e.g. digest@news.example.com.")
@click.option("--base-url", help="Public URL of `digest web`, e.g. https://digest.example.com.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("digest.toml"),
    show_default=True,
    help="Where to write the settings.",
)
@click.option("--force", is_flag=True, help="Replace an existing settings file.")
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Ask for each value not given as a flag (default: when on a terminal).",
)
def setup(path: Path, force: bool, interactive: bool | None, **given: str | None) -> None:
    """Write digest.toml: the site's name, addresses and a secret key.

    Asks for the publisher's name, website, postal address, From address and the public URL
    of the web app (or takes them as flags), and generates the secret key."""
    if path.exists() and not force:
        raise InputError(f"{path} exists: edit it, or pass --force to replace it")
    if interactive is None:
        interactive = sys.stdin.isatty()
    values: dict[str, str] = {}
    for name, flag, prompt, _ in SETUP_FIELDS:
        value = given.get(name)
        if value is None and interactive:
            value = click.prompt(prompt, default=_setup_default(name, values))
        if value is None:
            raise InputError(f"{flag} is needed (or run `digest setup` on a terminal to be asked)")
        values[name] = _setup_value(name, flag, value)
    text = setup_file_text(values, secrets.token_urlsafe(32))
    # Holds the secret key: readable by its owner only, and never half-written.
    _write_private(path, text)
    click.echo(f"wrote {path.resolve()} (keep it private: it holds the secret key)")
    click.echo("next: `digest doctor` checks it, `digest init` creates the database")


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only and never half-written: through a fresh
    ``.NAME.partial`` beside it, created exclusively (O_EXCL) and never through a link
    (O_NOFOLLOW), so a link planted there cannot make the secret land in, or take the mode
    of, a file of someone else's choosing."""
    partial = path.with_name(f".{path.name}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(partial, flags, 0o600)
    except FileExistsError:
        if partial.is_symlink() or not partial.is_file():
            raise InputError(
                f"{partial} exists and is not a plain file (a link?): remove it and run again"
            ) from None
        partial.unlink()  # what a setup that was stopped half-way left behind
        fd = os.open(partial, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _setup_default(name: str, values: dict[str, str]) -> str | None:
    if name == "from_address" and "site_url" in values:
        host = urlsplit(values["site_url"]).hostname or ""
        return f"digest@{host.removeprefix('www.')}" if host else None
    return None


def _setup_value(name: str, flag: str, raw: str) -> str:
    """A value checked as the settings loader and the mail headers will want it."""
    value = one_line(raw, 300)
    if not value:
        raise InputError(f"{flag} cannot be empty")
    if name in ("site_url", "base_url"):
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"{flag} must be an absolute http(s) URL, not {value!r}")
        return value.rstrip("/") if name == "base_url" else value
    if name == "from_address":
        return catalog.check_email(value)
    return value


def setup_file_text(values: dict[str, str], secret_key: str) -> str:
    """digest.toml with a comment above each setting saying what it does."""
    lines = [
        "# Digest's settings, written by `digest setup`. Every DIGEST_* environment variable",
        "# overrides the setting of the same name here (DIGEST_SITE_NAME -> site_name).",
        "# The other settings and their defaults: README, Configuration.",
        "[digest]",
    ]
    for name, _, _, comment in SETUP_FIELDS:
        lines += ["", *(f"# {part}" for part in textwrap.wrap(comment, 88))]
        lines.append(f"{name} = {json.dumps(values[name], ensure_ascii=False)}")
    lines += [
        "",
        "# Signs every unsubscribe, preference and confirm link, and dashboard sessions. Every",
        "# web and worker process must have the same one; changing it voids links already sent.",
        f"secret_key = {json.dumps(secret_key)}",
        "",
        "# Where mail goes: unset, one .eml file per message in ./outbox. To send for real:",
        '# smtp_url = "smtp://user:password@smtp.example.com:587?starttls=1"',
        "",
    ]
    return "\n".join(lines)
