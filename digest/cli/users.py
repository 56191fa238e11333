"""``digest users``: the dashboard's named users and their roles."""

from __future__ import annotations

import sys
from typing import IO

import click

from digest.cli.context import App, pass_app
from digest.errors import InputError

ROLE_CHOICE = click.Choice(["viewer", "editor", "operator"])


def _password(password_file: IO[str] | None, prompt: bool) -> str:
    """The new password: from a file (or ``-``: standard input, first line), else asked twice."""
    if password_file is not None:
        line = password_file.readline(2048)
        password = line.rstrip("\r\n")
    elif prompt and sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline(2048).rstrip("\r\n")
    if not password:
        raise InputError("no password given (type one, or use --password-file FILE or -)")
    return password


@click.group()
def users() -> None:
    """The dashboard's users and their roles (viewer, editor, operator)."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role", type=ROLE_CHOICE, default="editor", show_default=True, help="What they may do."
)
@click.option(
    "--password-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the password from this file's first line (- : standard input).",
)
@pass_app
def users_add(app: App, name: str, role: str, password_file: IO[str] | None) -> None:
    """Add a user NAME with a role; the password is asked for (or read from --password-file,
    or from standard input when it is not a terminal)."""
    password = _password(password_file, prompt=True)
    app.require_schema()
    user = app.core.users.add(name, password, role)
    click.echo(f"user {user.name} added ({user.role})")


@users.command("list")
@pass_app
def users_list(app: App) -> None:
    """Show every user, their role and whether they are disabled."""
    app.require_schema()
    found = app.core.users.all()
    if not found:
        click.echo("no users yet: `digest users add NAME --role editor` adds one")
    for user in found:
        state = "disabled" if user.disabled else "active"
        created = user.created_at.strftime("%Y-%m-%d") if user.created_at else ""
        click.echo(f"{user.name:<24} {user.role:<9} {state:<9} created {created}")


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICE)
@pass_app
def users_set_role(app: App, name: str, role: str) -> None:
    """Give user NAME the role ROLE (from their next page on)."""
    app.require_schema()
    user = app.core.users.set_role(name, role)
    click.echo(f"user {user.name} is now {user.role}")


@users.command("set-password")
@click.argument("name")
@click.option(
    "--password-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the password from this file's first line (- : standard input).",
)
@pass_app
def users_set_password(app: App, name: str, password_file: IO[str] | None) -> None:
    """Change user NAME's password; their open sessions end."""
    password = _password(password_file, prompt=True)
    app.require_schema()
    app.core.users.set_password(name, password)
    click.echo(f"password of {name} changed; their sessions ended")


@users.command("disable")
@click.argument("name")
@pass_app
def users_disable(app: App, name: str) -> None:
    """Stop user NAME signing in (the record stays); their open sessions end."""
    app.require_schema()
    app.core.users.disable(name)
    click.echo(f"user {name} disabled")


@users.command("enable")
@click.argument("name")
@pass_app
def users_enable(app: App, name: str) -> None:
    """Let a disabled user NAME sign in again."""
    app.require_schema()
    app.core.users.enable(name)
    click.echo(f"user {name} enabled")


@users.command("remove")
@click.argument("name")
@pass_app
def users_remove(app: App, name: str) -> None:
    """Delete user NAME; their sessions end."""
    app.require_schema()
    app.core.users.remove(name)
    click.echo(f"user {name} removed")
