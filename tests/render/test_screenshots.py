"""The digest in a real browser engine: headless Chromium at phone and desktop widths,
light and dark. PNGs go to test-artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.render import cases
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, require_browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (375, 800)
SCHEMES = ("light", "dark")


def _png(width: int, height: int) -> bytes:
    """A grey PNG: stands in for every thumbnail, since the test never goes online."""
    row = b"\x00" + bytes((150, 170, 160)) * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample site's daily digest, as `digest demo` previews it, and an Urdu edition."""
    folder = tmp_path_factory.mktemp("screens")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(
            cli,
            ["demo"],
            env={"DIGEST_SECRET_KEY": "screens", "DIGEST_DATABASE_URL": "sqlite:///demo.db"},
            catch_exceptions=False,
        )
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    urdu = folder / "preview-urdu.html"
    urdu.write_text(cases.filled(cases.draft(8, per_section=2, language="ur"))[0], "utf-8")
    return {"sample-daily": folder / "preview-daily.html", "urdu-rtl": urdu}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = require_browser()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _serve_offline(route: Any) -> None:
    request = route.request
    if request.resource_type == "image":
        route.fulfill(body=_png(120, 80), content_type="image/png")
    elif request.url.startswith("file:"):
        route.continue_()
    else:
        route.abort()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page_name", ["sample-daily", "urdu-rtl"])
def test_digest_fits_the_screen_in_light_and_dark(
    browser: Any, pages: dict[str, Path], page_name: str, width: int, scheme: str
) -> None:
    """At 375px the card fills the screen and at 800px it is 600px wide, nothing overflows
    sideways, and dark mode turns the card dark with light text (screenshot saved)."""
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.route("**/*", _serve_offline)
        page.goto(pages[page_name].as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{page_name}-{width}-{scheme}.png"), full_page=True)
        measured = page.evaluate(
            """() => {
                const card = document.querySelector('.dg-container');
                const headline = document.querySelector('.dg-hl');
                const wide = [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                    .map(e => e.tagName + '.' + e.className);
                return {
                    scroll: document.documentElement.scrollWidth,
                    inner: window.innerWidth,
                    card: card.getBoundingClientRect().width,
                    cardBg: getComputedStyle(card).backgroundColor,
                    text: getComputedStyle(headline).color,
                    wide: wide,
                };
            }"""
        )
    finally:
        page.close()
    assert measured["scroll"] <= measured["inner"], measured
    assert measured["wide"] == [], measured
    assert measured["card"] == (width if width < 600 else 600)
    dark = scheme == "dark"
    assert (measured["cardBg"] == "rgb(28, 33, 30)") is dark, measured
    assert (measured["text"] == "rgb(235, 239, 236)") is dark, measured
