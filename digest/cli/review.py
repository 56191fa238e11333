"""``digest review``: an editor's review of a held edition, from the shell."""

from __future__ import annotations

import getpass

import click

from digest.cli.context import ROW_ID, App, pass_app
from digest.service.review import ReviewView

#: Highest place a story can be moved to (a section holds at most MAX_PER_SECTION).
MAX_POSITION = 1000


def _actor() -> str:
    """Who makes a change from the shell: the login name (the lead may plug in the user)."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "operator (cli)"


def _show(view: ReviewView) -> None:
    click.echo(f"edition {view.edition_id} ({view.list_slug}, {view.day}): {view.state}")
    click.echo(f"subject: {view.subject}")
    if view.note:
        click.echo(f"note: {view.note}")
    for section in view.sections:
        click.echo(f"\n{section.name}")
        for story in section.stories:
            flags = "".join(
                f" [{flag}]"
                for flag, on in (("pinned", story.pinned), ("edited", story.edited))
                if on
            )
            click.echo(f"  {story.position}. [{story.id}] {story.headline}{flags}")
            if story.teaser:
                click.echo(f"       {story.teaser}")
    if view.events:
        click.echo("\nhistory:")
        for event in view.events:
            click.echo(f"  {event.at:%Y-%m-%d %H:%M} UTC  {event.who}: {event.words}")


@click.group()
def review() -> None:
    """An editor's review of a held edition: show, drop, pin, move, teaser, note, approve.

    TARGET is an edition's id, or a list's slug: its edition held for review, else its
    edition of today."""


@review.command("show")
@click.argument("target", metavar="TARGET")
@pass_app
def review_show(app: App, target: str) -> None:
    """Show an edition under review (TARGET), its stories and the history of its changes."""
    _show(app.core.review.show(target))


@review.command("drop")
@click.argument("target", metavar="TARGET")
@click.argument("story", type=ROW_ID)
@pass_app
def review_drop(app: App, target: str, story: int) -> None:
    """Take STORY (its id, as `review show` lists it) out of the held edition."""
    _show(app.core.review.drop(target, story, _actor()))


@review.command("pin")
@click.argument("target", metavar="TARGET")
@click.argument("story", type=ROW_ID)
@pass_app
def review_pin(app: App, target: str, story: int) -> None:
    """Put STORY at the top of its section."""
    _show(app.core.review.pin(target, story, _actor()))


@review.command("move")
@click.argument("target", metavar="TARGET")
@click.argument("story", type=ROW_ID)
@click.argument("position", type=click.IntRange(1, MAX_POSITION))
@pass_app
def review_move(app: App, target: str, story: int, position: int) -> None:
    """Put STORY at POSITION (1 = top) of its section."""
    _show(app.core.review.move(target, story, position, _actor()))


@review.command("teaser")
@click.argument("target", metavar="TARGET")
@click.argument("story", type=ROW_ID)
@click.argument("text")
@pass_app
def review_teaser(app: App, target: str, story: int, text: str) -> None:
    """Replace STORY's teaser with TEXT (plain text, at most 300 characters; "" restores the
    feed's)."""
    _show(app.core.review.teaser(target, story, text, _actor()))


@review.command("note")
@click.argument("target", metavar="TARGET")
@click.argument("text")
@pass_app
def review_note(app: App, target: str, text: str) -> None:
    """Write the note that opens the digest (plain text, at most 600 characters; "" removes
    it)."""
    _show(app.core.review.note(target, text, _actor()))


@review.command("approve")
@click.argument("target", metavar="TARGET")
@pass_app
def review_approve(app: App, target: str) -> None:
    """Approve the held edition: it goes at its send time, or now if that has passed."""
    _show(app.core.review.approve(target, _actor()))
