"""The operator's ``digest`` command: one module per command group, all asking the core.

Imports here stay light (click and Digest's own small modules): each command loads what it
needs when it runs, so ``digest --help`` and ``digest --version`` start at once.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import Any

import click

from digest import __version__
from digest.cli.context import App
from digest.errors import DigestError

#: Every command: (module, attribute, one-line help). Listed here so that `digest --help`
#: imports no command module (they pull in SQLAlchemy, Jinja2, Celery...); a test checks
#: each line against the command's own help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("site", "init", "Create the database, or upgrade it to the current schema."),
    "setup": ("site", "setup", "Write digest.toml: the site's name, addresses and a secret key."),
    "sections": ("site", "sections", "The site's sections (International, National, ...)."),
    "sources": ("site", "sources", "The feeds articles are gathered from."),
    "lists": ("site", "lists_group", "Mailing lists: which sections, when, and for whom."),
    "subscribers": ("subscribers", "subscribers", "The people who get a list's digest."),
    "ingest": ("sending", "ingest", "Fetch every due source and store new articles."),
    "preview": ("sending", "preview", "Render a list's digest to an HTML file."),
    "send": ("sending", "send", "Build a list's edition for a day and send it."),
    "status": ("sending", "status", "Show editions with their counts and state."),
    "stats": (
        "stats",
        "stats",
        "Show an edition's deliveries, bounces, complaints, unsubscribes and clicks.",
    ),
    "pause": ("sending", "pause", "Pause a send."),
    "resume": ("sending", "resume", "Continue a paused send from where it stopped."),
    "cancel": ("sending", "cancel", "Stop a send for good."),
    "retry-failed": ("sending", "retry_failed", "Send again to the failed recipients only."),
    "review": (
        "review",
        "review",
        "An editor's review of a held edition: show, drop, pin, move, teaser, note, approve.",
    ),
    "edition": ("sending", "edition", "Fix an edition nobody has yet: rebuild or drop it."),
    "worker": ("serve", "worker", "Run a Celery worker (needs DIGEST_BROKER_URL)."),
    "beat": ("serve", "beat", "Run the Celery beat scheduler (needs DIGEST_BROKER_URL)."),
    "web": ("serve", "web", "Serve the subscriber pages, the API and the dashboard."),
    "run": (
        "run",
        "run",
        "Run the schedule here: ingest, due sends, retries and the sweep (no broker needed).",
    ),
    "doctor": ("serve", "doctor", "Check the settings and reach every server."),
    "demo": ("demo", "demo", "Run everything on the bundled sample site."),
    "inbound": ("inbound", "inbound", "Receive bounces, complaints and mailto unsubscribes."),
    "tokens": ("tokens", "tokens", "Bearer tokens for the operator API (/api/)."),
    "users": (
        "users",
        "users",
        "The dashboard's users and their roles (viewer, editor, operator).",
    ),
}


class DigestGroup(click.Group):
    """Loads each command's module only when that command runs, and turns Digest's own
    errors into one clear line and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        module_name, attribute, _ = found
        module = importlib.import_module(f"digest.cli.{module_name}")
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing from COMMANDS alone, without loading a single command module.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f" Did you mean `digest {close[0]}`?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:
            # Not an error of the operator's: whoever read our output stopped (`| head`).
            raise
        except PermissionError as exc:
            # A read-only working folder (a container's code folder) is the operator's to fix:
            # say which file, not a traceback.
            where = f" {exc.filename}" if exc.filename else ""
            raise click.ClickException(
                f"cannot write{where}: permission denied (run from a folder you can write to, "
                "such as the data folder)"
            ) from exc
        except OSError as exc:
            # A file the operator named cannot be read or written (too long a name, no
            # permission, a directory): their environment, not a bug, so one line.
            raise click.ClickException(str(exc)) from exc
        except Exception as exc:
            # Imported only when something failed: SQLAlchemy is heavy for --help.
            from sqlalchemy.exc import OperationalError, ProgrammingError

            if isinstance(exc, OperationalError | ProgrammingError):
                # psycopg's messages run over several lines ("Is the server running...").
                reason = " ".join(str(exc.orig).split())
                raise click.ClickException(f"database error: {reason}") from exc
            raise


@click.group(cls=DigestGroup)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="TOML settings file (default: $DIGEST_CONFIG, else ./digest.toml if present).",
)
@click.version_option(version=__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Digest: gather a news site's articles by section and mail subscribers a daily digest.

    Settings come from built-in defaults, then the TOML file, then DIGEST_*
    environment variables (DIGEST_DATABASE_URL, DIGEST_BROKER_URL,
    DIGEST_SMTP_URL, DIGEST_OUTBOX_DIR, DIGEST_BASE_URL, DIGEST_SECRET_KEY, ...).
    Start with `digest demo` to see everything work on the bundled sample site.
    """
    ctx.obj = App(config_file, require_site=ctx.invoked_subcommand not in MAKE_A_SITE)


#: Commands that make a site where there is none: every other command refuses to run in a
#: folder with no settings (rather than leave an empty digest.db and a new secret there).
MAKE_A_SITE = frozenset({"setup", "demo", "init"})


def main() -> None:
    try:
        cli(prog_name="digest")
    except BrokenPipeError:
        # The reader of our output left (`digest lists list | head -1`): nothing more to say.
        # Standard output now points nowhere, so the interpreter's last flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


__all__ = ["App", "cli", "main"]
