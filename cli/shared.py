"""What every ``kup`` command shares: the settings the global flags chose, the consoles, one-sentence errors, dates."""

from __future__ import annotations

import functools
import os
import re
import sys
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console

from errors import InputError, KupError
from flows.settings import Settings, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

PIPED_WIDTH = 100_000  # output to a pipe or a file is never wrapped or cut to the 80 columns rich assumes


def fit_consoles() -> None:
    """A terminal gets its own width; a pipe or a file gets whole lines (tables, long errors) to read or grep."""
    for c in (console, err_console):
        c.width = None  # measure again: CliRunner and subprocess callers swap sys.stdout between invocations
        if not c.is_terminal:
            c.width = PIPED_WIDTH


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def choose_settings(ctx: typer.Context, **flags: object) -> Settings:
    """This invocation's settings: the environment's with the global flags (``--data-dir`` ...) over them, paths
    made absolute; kept on the command line's context (``ctx.obj``), where every command of it finds them."""
    chosen = load_settings(**flags)
    ctx.obj = chosen.model_copy(
        update={"data_dir": chosen.data_path, "sources_file": chosen.sources_file.expanduser().resolve()}
    )
    return ctx.obj


def settings(ctx: typer.Context) -> Settings:
    """The settings ``choose_settings`` kept for the command that ``ctx`` runs."""
    chosen = ctx.find_object(Settings)
    return chosen if chosen is not None else load_settings()  # a command run without the ``kup`` callback


def parse_when(text: str, flag: str = "--since") -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or a span back from now such as ``2d`` or ``12h``."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        try:
            return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):  # a span before year 1, or past what a timedelta holds
            raise InputError(
                f"{flag} {text!r} reaches back before the calendar begins; use a shorter span or a date"
            ) from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{flag} {text!r} is not a date; use e.g. 2026-11-01, 2026-11-01T08:00Z or 2d") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def fail(exc: KupError) -> typer.Exit:
    """Print a domain error as one sentence; the caller raises the returned exit (code 2)."""
    err_console.print(f"Error: {exc}", markup=False)
    return typer.Exit(2)


def friendly(command):
    """Turn domain errors into one plain sentence and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KupError as exc:
            raise fail(exc) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper


def report_to_running_server(s: Settings) -> None:
    """An in-process flow run shows up in `kup up`'s dashboard when its server answers (before Prefect loads)."""
    from flows.server import api_reachable

    if "prefect" not in sys.modules and api_reachable(s.prefect_api_url, timeout=0.5):
        point_prefect_at(s.prefect_api_url)


def use_prefect_server(s: Settings, advice: str) -> None:
    """Point this process at the pipeline's Prefect server, or stop with one sentence ending in ``advice``."""
    from flows.server import api_reachable

    if not api_reachable(s.prefect_api_url):
        raise KupError(f"no Prefect server answers at {s.prefect_api_url}; {advice}")
    point_prefect_at(s.prefect_api_url)


def point_prefect_at(api_url: str) -> None:
    """Prefect's client in this process, and the flow runs Prefect starts from it, talk to ``api_url``.

    Prefect's own setting (PREFECT_API_URL), written where Prefect reads it: the environment, read when Prefect
    loads, and handed by its runner to every flow run it starts as a child (``kup up``); a ``temporary_settings``
    block reaches only the code inside it. kup's own settings travel as ``Settings``, never this way."""
    os.environ["PREFECT_API_URL"] = api_url
