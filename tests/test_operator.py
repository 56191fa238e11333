"""An operator's first week: sources checked when added, sources and lists switched off or
removed without losing history, hidden lists, the small web traps, and the site identity
warnings every face shows."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from digest.cli import cli
from digest.config import Settings, load_settings, weak_key_reasons
from digest.errors import InputError
from digest.ingest import ingest_all
from digest.ingest.run import due_source_ids
from digest.send.schedule import due_lists
from digest.service import catalog
from digest.service.core import Digest
from digest.service.identity import identity_warnings
from digest.service.workers import Beacon
from digest.store.db import Database
from digest.store.models import Article, Edition, Source, utcnow
from digest.web import context, create_app
from tests.builders import api_token
from tests.web.conftest import wait_for_sends

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = (NOW - dt.timedelta(minutes=5)).date()
STRONG_KEY = "k3Jd9s-Qp2vX8mLr0tYw7zNb4cHf6gAe1uIo5sPd"


def _rss(path: Path, count: int, *, prefix: str = "Story") -> Path:
    items = "".join(
        f"<item><title>{prefix} {i}</title><link>https://paper.example/{prefix}/{i}</link>"
        f"<guid>https://paper.example/{prefix}/{i}</guid>"
        f"<pubDate>{format_datetime(NOW - dt.timedelta(minutes=10 + i))}</pubDate>"
        f"<description>About {i}.</description></item>"
        for i in range(count)
    )
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>P</title>{items}</channel></rss>',
        encoding="utf-8",
    )
    return path


class Operator:
    """Runs `digest ...` with the settings in the environment, from ``tmp_path``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = self.runner.invoke(cli, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result


@pytest.fixture
def operator(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Operator:
    monkeypatch.chdir(tmp_path)
    run = Operator(
        {
            "DIGEST_DATABASE_URL": db_url,
            "DIGEST_SECRET_KEY": STRONG_KEY,
            "DIGEST_OUTBOX_DIR": str(tmp_path / "outbox"),
            "DIGEST_SITE_NAME": "The Paper",
            "DIGEST_FROM_ADDRESS": "news@paper.example",
            "DIGEST_POSTAL_ADDRESS": "1 Press Row, Papertown",
        }
    )
    run("init")
    run("sections", "add", "news", "--name", "News")
    return run


# -- sources ----------------------------------------------------------------------------------


def test_sources_add_reports_what_the_feed_holds(
    operator: Operator, tmp_path: Path, db_url: str
) -> None:
    """Adding a source fetches and parses it once and says how many items it holds, the newest
    one's time and headline; nothing is stored as an article yet."""
    feed = _rss(tmp_path / "news.xml", 3)
    result = operator("sources", "add", str(feed), "--section", "news")
    newest = (NOW - dt.timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M")
    assert f"3 items, newest {newest} UTC: Story 0" in result.output
    db = Database(db_url)
    try:
        with db.session() as session:
            assert session.scalar(select(Article.id)) is None
    finally:
        db.dispose()


def test_sources_add_warns_of_a_loopback_url_and_names_allow_private(operator: Operator) -> None:
    """A loopback feed URL is added (the operator may mean it) with a warning that ingest will
    refuse it, naming --allow-private; with --allow-private there is no such warning."""
    refused = operator("sources", "add", "http://127.0.0.1:9/feed.xml", "--section", "news")
    assert "added source 1" in refused.output
    assert "loopback or private address" in refused.output
    assert "--allow-private" in refused.output
    allowed = operator(
        "sources", "add", "http://127.0.0.1:9/other.xml", "--section", "news", "--allow-private"
    )
    assert "loopback or private" not in allowed.output
    # Reachable or not, the feed's state is reported rather than passed over in silence.
    assert "warning: could not read the feed" in allowed.output


def test_sources_add_strict_refuses_a_feed_it_cannot_read(
    operator: Operator, tmp_path: Path
) -> None:
    """With --strict a feed that does not parse is refused with the reason and nothing is
    added; without it, it is added with a warning."""
    broken = tmp_path / "broken.xml"
    broken.write_text("<html><body>not a feed</body></html>", encoding="utf-8")
    strict = operator("sources", "add", str(broken), "--section", "news", "--strict", code=1)
    assert "source not added: could not read the feed" in strict.output
    assert "broken" not in operator("sources", "list").output
    lenient = operator("sources", "add", str(broken), "--section", "news")
    assert "added source" in lenient.output and "warning: could not read the feed" in (
        lenient.output
    )


def test_a_disabled_source_is_not_fetched_and_keeps_its_articles(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A disabled source is skipped by every ingest (scheduled or by hand) and its articles
    stay; enabled again, it is fetched at once."""
    with db.session() as session:
        catalog.add_section(session, "news", "News")
        first, _ = catalog.add_source(session, str(_rss(tmp_path / "a.xml", 2, prefix="A")), "news")
        second, _ = catalog.add_source(
            session, str(_rss(tmp_path / "b.xml", 2, prefix="B")), "news"
        )
        ids = first.id, second.id
    ingest_all(db, settings)
    with db.session() as session:
        catalog.set_source_enabled(session, ids[0], False)
    _rss(tmp_path / "a.xml", 3, prefix="A")  # a new story appears in the disabled feed
    reports = ingest_all(db, settings, force=True)
    assert [r.source_id for r in reports] == [ids[1]]
    with db.session() as session:
        assert due_source_ids(session, utcnow()) == [ids[1]]
        headlines = set(session.scalars(select(Article.headline)))
    assert headlines == {"A 0", "A 1", "B 0", "B 1"}
    with db.session() as session:
        catalog.set_source_enabled(session, ids[0], True)
    assert {r.source_id: r.new for r in ingest_all(db, settings)}[ids[0]] == 1


def test_removing_a_source_keeps_its_articles_and_the_editions(
    operator: Operator, tmp_path: Path, db_url: str
) -> None:
    """`sources remove` deletes the source but keeps its articles (detached), so an edition
    that carried them still shows them; `sources disable` and `enable` answer in one line."""
    feed = _rss(tmp_path / "news.xml", 2)
    operator("sources", "add", str(feed), "--section", "news")
    operator("lists", "add", "daily", "--name", "Daily", "--sections", "news")
    operator("ingest")
    assert "not fetched until enabled" in operator("sources", "disable", "1").output
    assert "disabled" in operator("sources", "list").output
    assert "enabled source 1" in operator("sources", "enable", "1").output
    removed = operator("sources", "remove", "1")
    assert "2 of its articles kept" in removed.output
    db = Database(db_url)
    try:
        with db.session() as session:
            assert session.scalar(select(Source.id)) is None
            articles = session.scalars(select(Article)).all()
            assert len(articles) == 2 and all(a.source_id is None for a in articles)
    finally:
        db.dispose()
    assert "unknown source: 7" in operator("sources", "remove", "7", code=1).output


# -- lists ------------------------------------------------------------------------------------


@pytest.fixture
def daily(db: Database) -> None:
    """A list "daily" on section news, one confirmed reader, one story today."""
    with db.session() as session:
        section, _ = catalog.add_section(session, "news", "News")
        mailing_list, _ = catalog.add_list(session, "daily", "Daily", ["news"], send_at="00:00")
        # Made yesterday: a list added after today's send time waits for tomorrow's.
        mailing_list.created_at = utcnow() - dt.timedelta(days=1)
        catalog.subscribe(session, mailing_list, "reader@example.com")
        session.add(
            Article(
                url="https://paper.example/1",
                section_id=section.id,
                headline="Today's story",
                teaser="Teaser.",
                published_at=utcnow() - dt.timedelta(minutes=5),
            )
        )


def test_a_disabled_list_is_not_scheduled_and_refuses_a_manual_send(
    db: Database, settings: Settings, daily: None
) -> None:
    """A disabled list is skipped by the scheduler and a manual send is refused in one line
    naming `lists enable`; enabled again, it is due as before."""
    now = utcnow()
    assert [list_id for list_id, _ in due_lists(db, now)] != []
    with db.session() as session:
        catalog.set_list_enabled(session, "daily", False)
    assert due_lists(db, now) == []
    core = Digest(settings, db=db)
    with pytest.raises(InputError, match=r"list daily is disabled.*lists enable daily"):
        core.start("daily")
    assert core.send_due(now) == []
    with db.session() as session:
        assert session.scalar(select(Edition.id)) is None
        catalog.set_list_enabled(session, "daily", True)
    assert len(due_lists(db, now)) == 1


def test_lists_remove_keeps_history_and_refuses_with_the_way_out(
    operator: Operator, db_url: str
) -> None:
    """A list with subscribers (or editions) cannot be removed: the refusal says what it holds
    and names `lists disable` and `lists hide`; a list never used is removed."""
    operator("lists", "add", "daily", "--name", "Daily", "--sections", "news")
    operator("subscribers", "add", "reader@example.com", "--list", "daily")
    refused = operator("lists", "remove", "daily", code=1)
    assert "1 subscriptions" in refused.output
    assert "lists disable daily" in refused.output and "lists hide daily" in refused.output
    operator("lists", "add", "typo", "--name", "Typo", "--sections", "news")
    assert "removed list typo" in operator("lists", "remove", "typo").output
    listed = operator("lists", "list").output
    assert "typo" not in listed and "daily" in listed
    operator("lists", "disable", "daily")
    operator("lists", "hide", "daily")
    assert "(disabled) (hidden)" in operator("lists", "list").output
    sent = operator("send", "--list", "daily", code=1)
    assert "list daily is disabled" in sent.output


# -- the web ----------------------------------------------------------------------------------


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[Flask]:
    app = create_app(settings.replace(secret_key=STRONG_KEY))
    yield app
    wait_for_sends(app)
    with app.app_context():
        context().close()


@pytest.fixture
def client(web: Flask) -> FlaskClient:
    return web.test_client()


def test_hidden_and_disabled_lists_are_not_on_the_public_index(
    client: FlaskClient, db: Database, daily: None
) -> None:
    """A hidden list leaves the public index but keeps its subscribe page; a disabled list is
    not offered on the index either."""
    assert "Daily" in client.get("/").get_data(as_text=True)
    with db.session() as session:
        catalog.add_list(session, "weekly", "Weekly Roundup", ["news"])
        catalog.set_list_public(session, "daily", False)
    page = client.get("/").get_data(as_text=True)
    assert "Weekly Roundup" in page and "/subscribe/daily" not in page
    assert client.get("/subscribe/daily").status_code == 200
    with db.session() as session:
        catalog.set_list_public(session, "daily", True)
        catalog.set_list_enabled(session, "weekly", False)
    page = client.get("/").get_data(as_text=True)
    assert "/subscribe/daily" in page and "Weekly Roundup" not in page


def test_a_bad_archive_date_gets_the_sites_own_404_page(
    client: FlaskClient, settings: Settings, daily: None
) -> None:
    """/archive/daily/2026-13-45 answers the site's styled 404 page, not Werkzeug's."""
    response = client.get("/archive/daily/2026-13-45")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert settings.site_name in page and "Not Found</h1>" not in page
    assert "no edition of that date" in page


def test_metrics_name_the_charset_once(client: FlaskClient) -> None:
    """/metrics' Content-Type names charset=utf-8 once."""
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1, content_type


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    token = api_token(db)
    return {"Authorization": f"Bearer {token}"}


def test_api_test_copy_by_list_and_date_needs_no_edition(
    client: FlaskClient, auth: dict[str, str], db: Database, settings: Settings, daily: None
) -> None:
    """POST /api/editions/test with a list (and a date) sends one copy before any edition
    exists, and writes no edition or ledger row; a list without stories that day is a 400."""
    response = client.post(
        "/api/editions/test",
        headers=auth,
        json={"list": "daily", "date": DAY.isoformat(), "to": "Editor@Example.com"},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sent_to"] == "editor@example.com"
    assert len(list(Path(settings.outbox_dir).rglob("*.eml"))) == 1
    with db.session() as session:
        assert session.scalar(select(Edition.id)) is None
    empty = client.post(
        "/api/editions/test",
        headers=auth,
        json={"list": "daily", "date": "2001-01-01", "to": "a@b.example"},
    )
    assert empty.status_code == 400 and "nothing to send" in empty.get_json()["error"]
    assert (
        client.post("/api/editions/test", headers=auth, json={"to": "a@b.example"}).status_code
        == 400
    )


def test_api_import_with_bad_rows_answers_422_and_keeps_the_good_ones(
    client: FlaskClient, auth: dict[str, str], db: Database, daily: None
) -> None:
    """A CSV import with a bad row answers 422 (as the CLI exits 1) with the report, and the
    good rows are imported; an all-good import answers 200; the OpenAPI says so."""
    bad = client.post(
        "/api/subscribers/import?list=daily",
        headers=auth,
        data="email\nnew@example.com\nnot-an-address\n",
        content_type="text/csv",
    )
    assert bad.status_code == 422
    assert bad.get_json()["added"] == 1 and bad.get_json()["errors"][0]["line"] == 3
    with db.session() as session:
        daily_list = catalog.get_list(session, "daily")
        emails = {s.email for s, _ in catalog.list_subscribers(session, daily_list)}
    assert "new@example.com" in emails
    good = client.post(
        "/api/subscribers/import?list=daily",
        headers=auth,
        data="email\nother@example.com\n",
        content_type="text/csv",
    )
    assert good.status_code == 200
    spec = client.get("/api/openapi.json").get_json()
    assert "422" in spec["paths"]["/api/subscribers/import"]["post"]["responses"]
    assert "post" in spec["paths"]["/api/editions/test"]


# -- site identity ----------------------------------------------------------------------------

SETUP_FLAGS = [
    "--site-name",
    "The Daily Meridian",
    "--site-url",
    "https://meridian.example",
    "--postal-address",
    "1 Press Row, Meridian City",
    "--from-address",
    "Digest@Meridian.Example",
    "--base-url",
    "https://digest.meridian.example/",
]


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """An empty folder to work in and an environment without any DIGEST_* variable."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    return {}


def test_setup_writes_a_private_commented_settings_file_with_no_warnings_left(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    """`digest setup` with flags writes digest.toml (owner-only, a comment per setting, a
    strong generated key) that load_settings reads, and the identity warnings are gone."""
    assert len(identity_warnings(load_settings(ensure_secret=False), bare_env)) == 3
    result = CliRunner().invoke(cli, ["setup", *SETUP_FLAGS], env=bare_env)
    assert result.exit_code == 0, result.output
    path = tmp_path / "digest.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    assert text.count("\n# ") >= 6 and "postal address" in text
    settings = load_settings(ensure_secret=False)
    assert settings.site_name == "The Daily Meridian"
    assert settings.from_address == "digest@meridian.example"
    assert settings.base_url == "https://digest.meridian.example"
    assert settings.secret_key and weak_key_reasons(settings.secret_key) == []
    assert identity_warnings(settings, bare_env) == []
    again = CliRunner().invoke(cli, ["setup", *SETUP_FLAGS], env=bare_env)
    assert again.exit_code == 1 and "--force" in again.output


def test_setup_refuses_a_planted_partial_link_and_writes_mode_0600(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    """A `.digest.toml.partial` symlink planted beside the settings file is refused, not
    followed (its target keeps its text and mode, no digest.toml appears); a stale partial
    file left by an interrupted setup is replaced, and the result is mode 0600 even when the
    stale file was world-readable."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours\n", encoding="utf-8")
    target.chmod(0o644)
    partial = tmp_path / ".digest.toml.partial"
    partial.symlink_to(target)
    refused = CliRunner().invoke(cli, ["setup", *SETUP_FLAGS], env=bare_env)
    assert refused.exit_code == 1 and "not a plain file" in refused.output
    assert target.read_text(encoding="utf-8") == "not yours\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "digest.toml").exists()
    partial.unlink()
    partial.write_text("half", encoding="utf-8")
    partial.chmod(0o644)
    done = CliRunner().invoke(cli, ["setup", *SETUP_FLAGS], env=bare_env)
    assert done.exit_code == 0, done.output
    assert (tmp_path / "digest.toml").stat().st_mode & 0o777 == 0o600
    assert not partial.exists()


def test_setup_asks_on_a_terminal_and_refuses_bad_values_writing_nothing(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    """Interactively each value is asked (the From address defaults to the site's domain);
    without a terminal a missing flag or a bad URL is refused and no file is written."""
    answers = "Town Crier\nhttps://www.town.example\n2 Bell Lane\n\nhttps://mail.town.example\n"
    asked = CliRunner().invoke(cli, ["setup", "--interactive"], input=answers, env=bare_env)
    assert asked.exit_code == 0, asked.output
    assert "From address [digest@town.example]" in asked.output
    assert load_settings(ensure_secret=False).from_address == "digest@town.example"
    (tmp_path / "digest.toml").unlink()
    missing = CliRunner().invoke(cli, ["setup", "--site-name", "X"], env=bare_env)
    assert missing.exit_code == 1 and "--site-url is needed" in missing.output
    flags = [*SETUP_FLAGS[:-1], "localhost:8000"]
    bad = CliRunner().invoke(cli, ["setup", *flags], env=bare_env)
    assert bad.exit_code == 1 and "--base-url must be an absolute http(s) URL" in bad.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_identity_warnings_name_each_embarrassing_default() -> None:
    """The quick start's defaults, a localhost base URL with SMTP configured, a misspelled
    DIGEST_ variable (with the closest real name) and a placeholder secret each get a line."""
    settings = Settings(
        smtp_url="smtp://relay.example:587", secret_key="change-me-to-a-long-random-string"
    )
    environ = {"DIGEST_SITENAME": "Typo Times", "DIGEST_CONFIG": "x.toml", "HOME": "/root"}
    lines = "\n".join(identity_warnings(settings, environ))
    assert 'site name is the default "Digest"' in lines
    assert "From address is digest@localhost" in lines
    assert "postal address is not configured" in lines
    assert "base URL is http://localhost:8000 while mail goes out by SMTP" in lines
    assert "DIGEST_SITENAME is set but Digest reads no such variable: did you mean " in lines
    assert "DIGEST_SITE_NAME?" in lines and "DIGEST_CONFIG" not in lines
    assert "placeholder" in lines


def test_doctor_warns_of_defaults_and_accepts_a_shared_secret_file_on_one_host(
    bare_env: dict[str, str], db_url: str, redis_url: str, tmp_path: Path
) -> None:
    """`doctor` warns of the default identity and a misspelled variable but does not fail
    when web and workers on one host share the generated secret file with a broker (and a
    worker of the test's own queue has left its heartbeat)."""
    Database(db_url).upgrade()
    load_settings()  # writes ./.digest-secret, as the first process on the host does
    queue = f"doctor-{tmp_path.name}-{os.getpid()}"
    Beacon(redis.Redis.from_url(redis_url), queue, "worker@test", 30).beat()
    env = {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_BROKER_URL": redis_url,
        "DIGEST_QUEUE": queue,
        "DIGEST_OUTBOX_DIR": str(tmp_path / "outbox"),
        "DIGEST_FROM_ADRESS": "news@paper.example",
    }
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 0, result.output
    assert "warn secret key: generated, kept in ./.digest-secret" in result.output
    assert 'warn identity: site name is the default "Digest"' in result.output
    assert "did you mean DIGEST_FROM_ADDRESS?" in result.output
    quick = CliRunner().invoke(cli, ["doctor", "--quick"], env=env)
    assert quick.exit_code == 0 and "identity" not in quick.output
    assert "transport" not in quick.output and "ok   broker" in quick.output


def test_send_dry_run_and_dashboard_show_the_identity_warnings(
    operator: Operator, db_url: str, tmp_path: Path
) -> None:
    """`send --dry-run` and the dashboard's overview show the identity warnings: here the
    localhost base URL while an SMTP server is configured."""
    feed = _rss(tmp_path / "news.xml", 2)
    operator("sources", "add", str(feed), "--section", "news")
    operator("lists", "add", "daily", "--name", "Daily", "--sections", "news")
    operator.env["DIGEST_SMTP_URL"] = "smtp://127.0.0.1:9"
    dry = operator("send", "--list", "daily", "--dry-run")
    assert "warning: base URL is http://localhost:8000 while mail goes out by SMTP" in dry.output
    password = "plum-raft-ocean-47-minnow"
    settings = load_settings(environ={**operator.env, "DIGEST_OPERATOR_PASSWORD": password})
    app = create_app(settings)
    try:
        client = app.test_client()
        page = client.get("/dashboard/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        client.post("/dashboard/login", data={"password": password, "csrf_token": csrf[1]})
        overview = client.get("/dashboard/").get_data(as_text=True)
        assert "Before this reaches subscribers" in overview
        assert "while mail goes out by SMTP" in overview
    finally:
        with app.app_context():
            context().close()
