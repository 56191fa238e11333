"""``digest tokens``: bearer tokens for the operator API."""

from __future__ import annotations

import datetime as dt

import click

from digest.cli.context import ROW_ID, App, NumberArgs


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "never"


@click.group()
def tokens() -> None:
    """Bearer tokens for the operator API (/api/): create, list, revoke."""


@tokens.command("create")
@click.argument("name")
@click.pass_obj
def tokens_create(app: App, name: str) -> None:
    """Make a token for NAME (who or what uses it) and print it; it is shown only this once."""
    row, token = app.core.access.create_token(name)
    click.echo(f"token {row.id} ({name}) created; it is shown only now, keep it safe:", err=True)
    click.echo(token)


@tokens.command("list")
@click.pass_obj
def tokens_list(app: App) -> None:
    """Show every token's id, name, creation, last use and whether it is revoked."""
    rows = app.core.access.tokens()
    if not rows:
        click.echo("no tokens yet: `digest tokens create NAME` makes one")
    for row in rows:
        state = f"revoked {_when(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(
            f"{row.id:>4}  {row.name:<24} created {_when(row.created_at)}  "
            f"last used {_when(row.last_used_at)}  {state}"
        )


@tokens.command("revoke", cls=NumberArgs)
@click.argument("token_id", type=ROW_ID)
@click.pass_obj
def tokens_revoke(app: App, token_id: int) -> None:
    """Refuse the token TOKEN_ID from now on (the row stays, for the record)."""
    app.core.access.revoke_token(token_id)
    click.echo(f"token {token_id} revoked")
