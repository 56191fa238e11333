"""The render benchmark: what one edition costs to render, against what each recipient costs.

* **per edition**: ``Renderer.render_digest`` on a synthetic 36-article edition
  (six sections of six, a third with thumbnails): Jinja2 for both parts, then
  premailer inlining the CSS, then the split on the personal-link placeholders.
  This runs once per edition and section variant.
* **per recipient**: ``EditionMailer.personal_links`` (two signed tokens) and
  ``MessageTemplate.build`` (headers, the pre-encoded parts joined around the
  quoted-printable links) for the same edition. This runs once per subscriber.

The design depends on the second being small next to the first (rendering must
not scale with subscribers): the script exits 1 if the ratio reaches 1/10.

* **with click tracking** (DIGEST_TRACK_CLICKS=1, and the open pixel): the same per
  recipient, now with one signed ``/c/`` token per article (36 HMACs) and the pixel's,
  timed in the same run beside the untracked figure.

Run: ``python bench/render.py [--repeat N] [--recipients N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from email.utils import formatdate

from digest.config import Settings
from digest.edition.build import Draft
from digest.edition.select import ArticleView, group_sections, preheader
from digest.mail.mime import Recipient
from digest.render.renderer import inline_css
from digest.send.mailer import EditionMailer
from digest.store.models import MailingList

SECTIONS = [
    ("national", "National"),
    ("international", "International"),
    ("business", "Business"),
    ("health-education", "Health & Education"),
    ("sports", "Sports"),
    ("technology", "Science & Technology"),
]
DAY = dt.date(2026, 11, 24)


def synthetic_draft(articles: int = 36) -> Draft:
    """An edition of ``articles`` stories spread evenly over six sections, all shown."""
    views = [
        ArticleView(
            id=i,
            section_slug=SECTIONS[i % len(SECTIONS)][0],
            headline=f"Story {i}: provincial council approves a plan after a long debate",
            teaser=(
                "Officials said on Tuesday that the plan would move forward within the week, "
                "with a public hearing and a review of the costs before any work starts."
            ),
            url=f"https://meridian.example/news/story-{i}",
            published_at=dt.datetime(2026, 11, 24, 3) + dt.timedelta(minutes=i),
            image_url=f"https://meridian.example/img/{i}.jpg" if i % 3 == 0 else None,
        )
        for i in range(articles)
    ]
    per_section = -(-articles // len(SECTIONS))
    sections = group_sections(views, SECTIONS, per_section)
    lst = MailingList(id=1, slug="daily", name="Morning Digest", language="en")
    top = sections[0].articles[0].headline
    return Draft(lst, DAY, sections, f"The Daily Meridian — {top}", preheader(sections, skip=top))


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs, in seconds: the least disturbed by the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="renders to time (best of)")
    parser.add_argument("--recipients", type=int, default=2000, help="messages to personalise")
    args = parser.parse_args(argv)

    settings = Settings(
        secret_key="bench-render",
        base_url="https://meridian.example",
        site_name="The Daily Meridian",
        site_url="https://meridian.example",
        postal_address="Meridian House, Islamabad",
        from_address="digest@meridian.example",
    )
    mailer = EditionMailer(settings)
    draft = synthetic_draft()
    context = mailer.context(draft)
    values = context.as_dict()
    renderer = mailer.renderer

    def jinja() -> None:
        renderer.render_template("email/digest.html", values)
        renderer.render_template("email/digest.txt", values)

    raw_html = renderer.render_template("email/digest.html", values)
    jinja_s = best_of(args.repeat, jinja)
    premailer_s = best_of(args.repeat, lambda: inline_css(raw_html))
    edition_s = best_of(args.repeat, lambda: mailer.message_template(draft))

    template = mailer.message_template(draft)
    date = formatdate(usegmt=True)
    domain = "meridian.example"

    def personalise() -> None:
        for i in range(args.recipients):
            template.build(
                Recipient(
                    f"reader{i}@example.com",
                    f"Reader {i}",
                    mailer.personal_links(i, 1),
                    mailer.message_id(1, i, domain),
                ),
                date,
            )

    per_recipient_s = best_of(3, personalise) / args.recipients

    tracking = EditionMailer(settings.replace(track_clicks=True, track_opens=True))
    tracked = tracking.message_template(draft)

    def personalise_tracked() -> None:
        for i in range(args.recipients):
            tracked.build(
                Recipient(
                    f"reader{i}@example.com",
                    f"Reader {i}",
                    tracking.personal_links(
                        i, 1, template=tracked, edition_id=1, delivery_id=100_000 + i
                    ),
                    tracking.message_id(1, i, domain),
                ),
                date,
            )

    def tracked_links_only() -> None:
        for i in range(args.recipients):
            tracking.personal_links(i, 1, template=tracked, edition_id=1, delivery_id=100_000 + i)

    tracked_s = best_of(3, personalise_tracked) / args.recipients
    tracked_links_s = best_of(3, tracked_links_only) / args.recipients
    tracked_kb = (
        len(
            tracked.html.fill(
                tracking.personal_links(1, 1, template=tracked, edition_id=1, delivery_id=1)
            ).encode()
        )
        / 1000
    )
    html_kb = len(template.html.fill(mailer.personal_links(1, 1)).encode()) / 1000
    ratio = per_recipient_s / edition_s

    articles = sum(len(s.articles) for s in draft.sections)
    print(f"edition: {articles} articles in {len(draft.sections)} sections, HTML {html_kb:.1f} KB")
    print(f"per edition   Jinja2 (html+text)   {jinja_s * 1000:8.2f} ms")
    print(f"per edition   premailer            {premailer_s * 1000:8.2f} ms")
    print(f"per edition   whole render         {edition_s * 1000:8.2f} ms  (best of {args.repeat})")
    print(
        f"per recipient links + MIME build   {per_recipient_s * 1000:8.3f} ms"
        f"  (mean of {args.recipients}, best of 3)"
    )
    print(f"ratio per recipient / per edition  {ratio:8.4f}  (must stay under 0.1)")
    print(
        f"per recipient with click tracking  {tracked_s * 1000:8.3f} ms"
        f"  (+{(tracked_s - per_recipient_s) * 1e6:.0f} µs for {len(tracked.tracked_links)}"
        f" tracked links and the pixel; signing them alone {tracked_links_s * 1e6:.0f} µs;"
        f" HTML {tracked_kb:.1f} KB)"
    )
    print(f"one edition render costs as much as {1 / ratio:,.0f} personalised messages")
    return 0 if ratio < 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
