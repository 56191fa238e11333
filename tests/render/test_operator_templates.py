"""A list's own template folder: it wins over the defaults file by file, and a broken
template is reported with file and line before anything is stored or sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.config import Settings
from digest.errors import InputError, TemplateError
from digest.service import catalog
from digest.service.core import Digest
from digest.store.db import Database
from digest.store.models import Article, Edition
from tests.conftest import SmtpSink
from tests.render import cases
from tests.test_cli import DAY, Operator, _set_up_town


def _folder(root: Path, **files: str) -> Path:
    (root / "email").mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (root / "email" / name.replace("_", ".")).write_text(body, encoding="utf-8")
    return root


def test_list_folder_overrides_only_the_files_it_has(tmp_path: Path) -> None:
    """A list folder with only digest.txt gets its own text part and the default HTML."""
    folder = _folder(tmp_path, digest_txt="{{ t.in_this_issue }} at {{ site.name }}\n")
    html, text = cases.filled(cases.draft(template_dir=str(folder)))
    assert text == "In this issue at The Test Gazette\n"
    assert "dg-container" in html


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error in a list's template is a TemplateError naming that file and line."""
    folder = _folder(tmp_path, digest_html="<p>\n{% for x in sections %}\n<p>{{ x.name }\n")
    with pytest.raises(TemplateError) as caught:
        cases.rendered(cases.draft(template_dir=str(folder)))
    assert caught.value.template == str(folder / "email" / "digest.html")
    assert caught.value.line == 3


def test_runtime_error_names_file_and_line(tmp_path: Path) -> None:
    """An undefined name (or any error) while rendering names the template file and line."""
    folder = _folder(tmp_path, digest_txt="ok\n{{ site.name }}\n{{ edition.nope }}\n")
    with pytest.raises(TemplateError) as caught:
        cases.rendered(cases.draft(template_dir=str(folder)))
    assert caught.value.template == str(folder / "email" / "digest.txt")
    assert caught.value.line == 3
    assert "nope" in str(caught.value)


def test_sandbox_keeps_templates_away_from_python_internals(tmp_path: Path) -> None:
    """A list template cannot climb from a value into Python's internals."""
    folder = _folder(tmp_path, digest_txt="{{ site.__class__.__mro__ }}\n")
    with pytest.raises(TemplateError, match=r"unsafe|__class__"):
        cases.rendered(cases.draft(template_dir=str(folder)))


def test_missing_list_folder_is_a_template_error() -> None:
    """A list naming a folder that has gone away fails to render with that folder's name."""
    with pytest.raises(TemplateError, match="/no/such/folder"):
        cases.rendered(cases.draft(template_dir="/no/such/folder"))


def test_broken_template_stops_the_build_before_any_ledger_row(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Building an edition with a broken list template raises TemplateError and stores no
    edition, so no subscriber row can fail on it."""
    folder = _folder(tmp_path, digest_html="{{ broken(\n")
    with db.session() as session:
        section, _ = catalog.add_section(session, "national", "National")
        lst, _ = catalog.add_list(session, "daily", "Daily", ["national"], template_dir=str(folder))
        catalog.subscribe(session, lst, "reader@example.com", "Reader")
        session.add(
            Article(
                url="https://n.example/1",
                guid="g1",
                section_id=section.id,
                headline="Story",
                teaser="T.",
                published_at=dt.datetime(2026, 11, 24, 9),
            )
        )
    with pytest.raises(TemplateError, match=r"digest\.html:1"):
        Digest(settings, db=db).start("daily", dt.date(2026, 11, 24))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Edition)) == 0


def test_add_list_checks_language_subject_and_folder(db: Database, tmp_path: Path) -> None:
    """lists add refuses an unknown language, an unknown subject placeholder and a missing
    folder, and stores good values in canonical form."""
    with db.session() as session:
        catalog.add_section(session, "national", "National")
        with pytest.raises(InputError, match="unknown language"):
            catalog.add_list(session, "a", "A", ["national"], language="klingon")
        with pytest.raises(InputError, match=r"\{top headlines\}"):
            catalog.add_list(session, "a", "A", ["national"], subject="{site} {top headlines}")
        with pytest.raises(InputError, match="no such folder"):
            catalog.add_list(session, "a", "A", ["national"], template_dir=str(tmp_path / "x"))
        lst, _ = catalog.add_list(
            session,
            "a",
            "A",
            ["national"],
            language="ur-pk",
            subject="{list}: {top headline}",
            template_dir=str(tmp_path),
        )
        assert (lst.language, lst.subject_template, lst.template_dir) == (
            "ur-PK",
            "{list}: {top headline}",
            str(tmp_path.resolve()),
        )


def test_cli_reports_a_broken_template_in_one_line_and_sends_nothing(
    operator: Operator, tmp_path: Path, smtp_server: SmtpSink
) -> None:
    """With a broken list template, `digest preview` and `digest send` each print one line
    naming the file and line, exit 1, and no message reaches the server."""
    _set_up_town(operator, tmp_path)
    operator("subscribers", "add", "ann@example.com", "--list", "town")
    operator("ingest")
    folder = _folder(tmp_path / "tpl", digest_txt="line one\n{{ links.nope }}\n")
    added = operator(
        "lists", "add", "town", "--name", "Town Daily", "--sections", "weather,local",
        "--language", "fr", "--subject", "{list} — {date}", "--template-dir", str(folder),
    )  # fmt: skip
    assert "language fr" in added.output
    for command in (["preview"], ["send"]):
        result = operator(*command, "--list", "town", "--date", DAY, ok=False)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert f"{folder / 'email' / 'digest.txt'}:2" in lines[0]
    assert smtp_server.received == []
    operator("lists", "add", "town", "--name", "Town Daily", "--sections", "weather,local",
             "--template-dir", "")  # fmt: skip
    sent = operator("send", "--list", "town", "--date", DAY)
    assert "1 sent" in sent.output
    message = smtp_server.received[0].message
    assert message["Subject"].startswith("Town Daily — ")
    assert "Dans ce numéro" in message.get_body(("plain",)).get_content()
