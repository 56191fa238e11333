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
    from digest.web.auth import create_token

    with app.db.session() as session:
        row, token = create_token(session, name)
        token_id = row.id
    click.echo(f"token {token_id} ({name}) created; it is shown only now, keep it safe:", err=True)
    click.echo(token)


@tokens.command("list")
@click.pass_obj
def tokens_list(app: App) -> None:
    """Show every token's id, name, creation, last use and whether it is revoked."""
    from digest.web.auth import list_tokens

    with app.db.session() as session:
        rows = list_tokens(session)
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
    from digest.web.auth import revoke_token

    with app.db.session() as session:
        revoke_token(session, token_id)
    click.echo(f"token {token_id} revoked")
