"""`digest sources add/list` and `digest ingest` as the operator sees them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli

Run = Callable[..., Result]
CORPUS = Path(__file__).resolve().parents[1] / "data" / "feeds"


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Runs `digest ARGS` on a fresh database; asserts the exit status given."""
    monkeypatch.chdir(tmp_path)
    env = {"DIGEST_DATABASE_URL": db_url, "DIGEST_SECRET_KEY": "k"}
    runner = CliRunner()

    def invoke(*args: str, status: int = 0) -> Result:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == status, result.output
        return result

    invoke("init")
    for slug in ("national", "international", "opinion"):
        invoke("sections", "add", slug, "--name", slug.title())
    return invoke


def test_sources_add_stores_category_map_and_identity(run: Run) -> None:
    """--category-map and --identity are stored, shown by `sources list`, and used by ingest."""
    feed = str(CORPUS / "wordpress-world-mapped.xml")
    run(
        "sources", "add", feed, "--section", "opinion", "--identity", "guid",
        "--category-map", "World=international,Pakistan=national",
    )  # fmt: skip
    listing = run("sources", "list").output
    assert "categories: World=international, Pakistan=national" in listing
    assert "never" in listing
    output = run("ingest").output
    assert "4 new articles, 0 failed" in output
    listing = run("sources", "list").output.splitlines()[1]
    assert listing.split()[1:2] == ["opinion"]
    assert " 4    4      0  now" in listing


def test_bad_identity_and_category_map_are_refused(run: Run) -> None:
    """An unknown identity or a malformed map is an error of one line, exit status 1 or 2."""
    feed = str(CORPUS / "rss20-basic.xml")
    result = run("sources", "add", feed, "--section", "opinion", "--identity", "title", status=2)
    assert "'title' is not one of" in result.output
    result = run(
        "sources", "add", feed, "--section", "opinion", "--category-map", "World", status=1
    )
    assert "CATEGORY=SECTION" in result.output


def test_failing_source_shows_error_and_next_try_then_backs_off(run: Run, tmp_path: Path) -> None:
    """A failing only source exits 1; list shows the error and next try; the next run backs off."""
    broken = tmp_path / "broken.xml"
    broken.write_text("<html>maintenance</html>")
    run("sources", "add", str(broken), "--section", "national")
    result = run("ingest", status=1)
    assert "FAILED: not a readable feed" in result.output
    assert "every source failed" in result.output
    listing = run("sources", "list").output
    assert "last error: not a readable feed" in listing
    assert "      1  20" in listing  # one error, next try at a date, not "now"

    broken.write_bytes((CORPUS / "rss20-basic.xml").read_bytes())
    waiting = run("ingest", status=1)
    assert "backing off until" in waiting.output
    assert "1 backing off" in waiting.output
    forced = run("ingest", "--force")
    assert "3 new articles, 0 failed" in forced.output


def test_one_failed_source_of_two_exits_1_having_ingested_the_other(
    run: Run, tmp_path: Path
) -> None:
    """One failing and one good source: the table shows both, the good one's articles are
    stored, and the exit status is 1 (a cron job sees the broken feed); the source added
    without a name is called by its feed's title."""
    (tmp_path / "empty.xml").write_text("")
    run("sources", "add", str(tmp_path / "empty.xml"), "--section", "national")
    added = run("sources", "add", str(CORPUS / "atom10-basic.xml"), "--section", "international")
    assert "(The Ledger) -> international" in added.output
    output = run("ingest", status=1).output
    assert "FAILED" in output
    assert "The Ledger" in output and "ok" in output
    assert "2 new articles, 1 failed" in output
    assert "1 source of 2 failed or backing off" in output
