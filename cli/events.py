"""``kup events install|remove|listen`` (database change events) and ``kup watch`` (hot feeds).

``install`` and ``remove`` print their SQL first and apply it only when confirmed (``--yes``, or a yes at the
prompt); ``--print-only`` never touches the database, for a DBA to run the script by hand.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cli.shared import console, err_console, friendly, settings, use_prefect_server
from connectors.sources import SqlSource
from errors import InputError
from flows.settings import Settings

events_app = typer.Typer(
    help="Database change events: PostgreSQL triggers that NOTIFY, and a listener that refreshes a source at once.",
    no_args_is_help=True,
)


def _event_source(s: Settings, name: str) -> SqlSource:
    from connectors import load_sources, select_sources

    [source] = select_sources(load_sources(s.sources_file), [name])
    if not isinstance(source, SqlSource):
        raise InputError(f"source {name} is a feed; events are for PostgreSQL table sources (feeds take poll_seconds)")
    if source.events != "notify":
        raise InputError(f"source {name} does not say 'events: notify' in the sources file; add it there first")
    return source


def _change(s: Settings, name: str, url_env: str | None, yes: bool, print_only: bool, install: bool) -> None:
    from connectors import pg_events

    source = _event_source(s, name)
    statements = pg_events.install_sql(source) if install else pg_events.remove_sql(source)
    dsn = pg_events.conninfo(source, os.environ, url_env)
    console.print(pg_events.script(statements), markup=False, end="")
    if print_only:
        return
    from errors.redact import mask_url

    where = f"source {name}'s database ({mask_url(dsn)})"
    if not yes:
        if not sys.stdin.isatty():
            err_console.print(f"Not applied: run again with --yes to apply it to {where}.", markup=False)
            raise typer.Exit(1)
        if not typer.confirm(f"Apply this to {where}?"):
            err_console.print("Not applied.")
            raise typer.Exit(1)
    pg_events.apply(source, statements, dsn)
    if install:
        console.print(
            f"Installed: changes to {source.table} notify channel {pg_events.channel(source)}; `kup events listen` "
            "(or the listen deployment) turns them into refreshes of this source.",
            markup=False,
        )
    else:
        console.print(f"Removed: {source.table} no longer notifies; the minute refresh still reads it.", markup=False)


_URL_ENV = typer.Option(
    "--url-env", help="Environment variable with a URL whose account may create triggers (default: the source's)"
)
_YES = typer.Option("--yes", "-y", help="Apply without asking")
_PRINT_ONLY = typer.Option("--print-only", help="Print the SQL and stop")


@events_app.command("install")
@friendly
def install(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="An SQL source that says 'events: notify'")],
    url_env: Annotated[str | None, _URL_ENV] = None,
    yes: Annotated[bool, _YES] = False,
    print_only: Annotated[bool, _PRINT_ONLY] = False,
) -> None:
    """Print, then apply, the trigger that NOTIFYs the row key of every insert, update and delete."""
    _change(settings(ctx), source, url_env, yes, print_only, install=True)


@events_app.command("remove")
@friendly
def remove(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The SQL source whose trigger goes")],
    url_env: Annotated[str | None, _URL_ENV] = None,
    yes: Annotated[bool, _YES] = False,
    print_only: Annotated[bool, _PRINT_ONLY] = False,
) -> None:
    """Print, then apply, the SQL that drops the source's triggers and their functions."""
    _change(settings(ctx), source, url_env, yes, print_only, install=False)


@events_app.command("listen")
@friendly
def listen(
    ctx: typer.Context,
    minutes: Annotated[float | None, typer.Option(help="Stop after this long (default: until Ctrl-C)")] = None,
    refresh_here: Annotated[
        bool,
        typer.Option(
            "--refresh-here/--no-refresh-here",
            help="Refresh a changed source in this process with the models loaded (seconds); or send the event "
            "for kup up's refresh-on-event deployment to run (a new process per change, a few seconds more)",
        ),
    ] = True,
) -> None:
    """Refresh a source within seconds of its rows changing: the models stay loaded here, and each refresh shows
    in Prefect's event feed (needs `kup up` running)."""
    s = settings(ctx)
    use_prefect_server(
        s, "start `kup up` first: its refresh-on-event deployment runs the refreshes these events ask for"
    )
    from flows.listen import event_sources, listen_here

    names = ", ".join(source.name for source in event_sources(s))
    how = "refreshing here" if refresh_here else "kup up's refresh-on-event deployment refreshes"

    def started(_) -> None:
        console.print(f"Listening to {names}, {how} (Ctrl-C stops)", markup=False)

    def changed(line: str) -> None:
        console.print(line, markup=False)

    listen_here(s, minutes * 60 if minutes else None, refresh_here=refresh_here, on_start=started, on_change=changed)


@friendly
def watch(
    ctx: typer.Context,
    minutes: Annotated[float | None, typer.Option(help="Stop after this long (default: until Ctrl-C)")] = None,
) -> None:
    """Poll the hot feeds (poll_seconds in the sources file) with the models loaded; index new items at once."""
    from flows.watch import stats_line, watch_here

    def started(watching) -> None:
        names = ", ".join(f"{f.name} every {f.poll_seconds:g} s" for f in watching.feeds)
        console.print(f"Watching {names} (Ctrl-C stops)", markup=False)

    def changed(line: str) -> None:
        console.print(line, markup=False)

    stats = watch_here(settings(ctx), minutes * 60 if minutes else None, started, changed)
    console.print(stats_line(stats), markup=False)
