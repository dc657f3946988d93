"""The ``kup`` command line. User mistakes print one sentence, not a traceback.

Here: the global flags (which pipeline), the pipeline commands ``refresh``, ``search``, ``status``, ``backfill``,
``reindex`` and ``ask``, and the other groups registered: ``api`` and ``up`` (``cli.serve``), ``finetune`` and
``adapters list|promote|rollback`` (``cli.training``), ``models prepare`` (``cli.models``), ``events
install|remove|listen`` and ``watch`` (``cli.events``). What commands print lives in the views.

Why one module of ~380 lines: each pipeline command is a short function over the same Settings, views and fast
paths; splitting them would scatter the one ``app``.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import events as cli_events
from cli import serve
from cli import training as cli_training
from cli.models import announce_preparation, models_app
from cli.shared import (
    choose_settings,
    console,
    err_console,
    fail,
    fit_consoles,
    friendly,
    parse_when,
    point_prefect_at,
    settings,
    use_prefect_server,
)
from errors import InputError, KupError
from flows.settings import Settings, settings_in_force

if TYPE_CHECKING:
    from indexing.reports import RefreshSummary

__all__ = ["app", "parse_when"]

app = typer.Typer(
    name="kup",
    help="Keep an LLM's knowledge current: feeds and databases into a fresh hybrid index.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _library_environment(s: Settings) -> None:
    """Prefect's settings for this pipeline (its home in the data dir, the runner's poll, heartbeats, the credential
    of a server `kup up` started) and Hugging Face's offline switches, where those libraries read them: the
    environment, when they load, here and in the processes they start (served flow runs, Dask workers). A value the
    user set wins. kup's own settings are not among them: they travel as ``Settings``."""
    from flows.server import prefect_env

    for key, value in prefect_env(s).items():
        os.environ.setdefault(key, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory [env: KUP_DATA_DIR; default .kup]")] = None,
    sources: Annotated[
        Path | None, typer.Option("--sources", help="Sources file [env: KUP_SOURCES_FILE; default sources.yaml]")
    ] = None,
    catalog_url: Annotated[str | None, typer.Option(help="Catalog database URL [env: KUP_CATALOG_URL]")] = None,
    qdrant_url: Annotated[str | None, typer.Option(help="Qdrant server URL [env: KUP_QDRANT_URL]")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr")] = False,
) -> None:
    fit_consoles()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        s = choose_settings(
            ctx, data_dir=data_dir, sources_file=sources, catalog_url=catalog_url, qdrant_url=qdrant_url
        )
        _library_environment(s)
    except KupError as exc:
        raise fail(exc) from None


@app.command()
@friendly
def refresh(
    ctx: typer.Context,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable)")] = None,
    force: Annotated[bool, typer.Option(help="Pull sources even while they back off after failures")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON")] = False,
) -> None:
    """Pull every source once and index what is new or changed.

    A flow run on the Prefect server when one answers (it shows in the dashboard), else in this process.
    Exit code 0: the index is fresh; 1: a source failed or is backing off; 2: a mistake in the command or settings.
    """
    from cli.views import print_refresh, to_json
    from connectors import load_sources, select_sources
    from flows.server import api_reachable

    s = settings(ctx)
    select_sources(load_sources(s.sources_file), source)  # a bad sources file fails before anything starts
    if api_reachable(s.prefect_api_url):
        summary = _refresh_as_flow_run(s, source or None, force)
    else:
        from flows.refresh_local import refresh_here

        err_console.print(
            f"No Prefect server answers at {s.prefect_api_url}: refreshing in this process, "
            "so this run is not recorded in a dashboard (`kup up` starts one).",
            markup=False,
        )
        summary = refresh_here(s, source or None, force)
    if as_json:
        console.print_json(to_json(summary.to_dict()))
    else:
        print_refresh(summary, console)
    if summary.failed_sources or any(row.skipped for row in summary.sources):
        raise typer.Exit(1)


def _refresh_as_flow_run(s: Settings, sources: list[str] | None, force: bool) -> RefreshSummary:
    """Run the refresh flow in this process, reporting to the Prefect server at ``s.prefect_api_url``."""
    point_prefect_at(s.prefect_api_url)  # before Prefect loads: its client, and what it starts, read it there
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.refresh import refresh as refresh_flow
    from indexing.reports import RefreshSummary

    with temporary_settings({PREFECT_API_URL: s.prefect_api_url}), settings_in_force(s):
        state = refresh_flow(sources=sources, force=force, return_state=True)
    result = state.result(raise_on_failure=False)
    summary = result if isinstance(result, dict) else getattr(result, "summary", None)
    if not isinstance(summary, dict):  # the run broke before it could summarise
        err_console.print(f"Error: the refresh run ended {state.name}: {state.message or result}", markup=False)
        raise typer.Exit(1)
    summary.setdefault("verdict", {"status": state.name.lower(), "message": state.message})
    return RefreshSummary.from_dict(summary)


@app.command()
@friendly
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for")],
    limit: Annotated[
        int, typer.Option("--k", "-k", "--limit", help="How many passages (--limit: the old name, as -k)")
    ] = 5,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable)")] = None,
    since: Annotated[str | None, typer.Option(help="Only passages published after (2026-11-01, 2d, 12h)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print the best passages for a query (hybrid dense + sparse search).

    Asks a running `kup api` serving the same index when there is one (no model to load), else searches here.
    """
    from cli.views import print_search, search_data, to_json

    published_after = parse_when(since) if since else None
    s = settings(ctx)
    _check_sources(s, source)
    result = _search_via_api(s, query, limit, source, published_after)
    if result is None:
        from flows.runtime import Runtime
        from indexing import search as hybrid_search

        with Runtime(s) as rt:
            result = hybrid_search(
                rt.store,
                rt.dense,
                rt.sparse,
                query,
                limit=limit,
                sources=source or None,
                published_after=published_after,
            )
    data = search_data(result)
    if as_json:
        console.print_json(to_json(data))
    else:
        print_search(data, console)


def _check_sources(s: Settings, sources: list[str] | None) -> None:
    """A --source nobody knows is one sentence naming the known ones (exit 2), not an empty result."""
    if sources:
        from flows.runtime import Runtime
        from indexing.search import check_sources

        with Runtime(s) as rt:
            check_sources(sources, rt.known_sources())


def _search_via_api(s: Settings, query: str, limit: int, sources: list[str] | None, published_after):
    """The running `kup api`'s answer as a SearchResult, or None to search in this process."""
    from datetime import UTC, datetime

    from cli.api_client import find_api

    body: dict = {"query": query, "k": limit, "sources": sources or None}
    if published_after is not None:
        days = (datetime.now(UTC) - published_after).total_seconds() / 86400
        if days <= 0:
            return None  # a moment in the future: the local search says what it finds (nothing)
        body["recent_days"] = days
    client = find_api(s)
    reply = client.search(body) if client else None
    if reply is None:
        return None
    from indexing import SearchResult
    from indexing.store import Hit

    hits = [Hit("", float(h.pop("score")), h) for h in reply["hits"]]
    return SearchResult(reply["query"], hits, embed_ms=reply.get("embed_ms", 0.0), search_ms=reply["search_ms"])


@app.command()
@friendly
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Show whether refreshes are completing (first line), documents per source, pending work, failures, the last
    refresh and the freshness lag. Exit code 0: healthy, refreshing or not scheduled; 1: refreshes have stopped or a
    source is failing or backing off (as for `kup refresh`)."""
    from cli.views import to_json
    from cli.views_status import print_status, status_data
    from flows.deployments import read_specs
    from flows.health import pipeline_health
    from flows.runtime import Runtime

    s = settings(ctx)
    with Runtime(s) as rt:
        data = status_data(rt)
        health = pipeline_health(s, rt.catalog, read_specs())
    data["health"] = health.as_dict()
    if as_json:
        console.print_json(to_json(data))
    else:
        console.print(f"kup: {health.headline}", style="bold red" if health.exit_code else "green", markup=False)
        print_status(data, console)
    raise typer.Exit(health.exit_code)


def _run_deployment(s: Settings, name: str, parameters: dict, wait: bool) -> None:
    """Create a run of a served deployment through the Prefect API, so it shows in the dashboard."""
    from flows.server import dashboard_url

    use_prefect_server(s, "start one with `kup up` (or `make up`), or set KUP_PREFECT_API_URL")
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(name, parameters=parameters, timeout=None if wait else 0)
    except ObjectNotFound:
        raise KupError(f"deployment {name} is not known to the server; is `kup up` serving it?") from None
    console.print(f"flow run {run.name} ({run.id}) of {name}: {run.state_name}", markup=False)
    if wait:
        _print_finished_run(name.split("/", 1)[0], run)
    console.print(f"{dashboard_url(s.prefect_api_url)}/runs/flow-run/{run.id}")
    if wait and not (run.state and run.state.is_completed()):
        raise typer.Exit(1)


def _print_finished_run(flow: str, run) -> None:
    """What the run did: its figures when its result is readable, else its summary artifact, else its message."""
    from cli.views import print_run_figures
    from flows.run_results import SUMMARY_KEYS, run_result, summary_text

    if (result := run_result(run)) is not None:
        print_run_figures(flow, result, console)
    elif flow in SUMMARY_KEYS and (text := summary_text(run.id, SUMMARY_KEYS[flow])):
        console.print(text, markup=False)
    if run.state and run.state.message and not run.state.is_completed():
        err_console.print(f"{run.state_name}: {run.state.message}", markup=False)


@app.command()
@friendly
def backfill(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", "-s", help="The source to re-read")],
    since: Annotated[str, typer.Option(help="Start of the window (2026-11-01, 2026-11-01T08:00Z, 7d)")],
    until: Annotated[str | None, typer.Option(help="End of the window (default: now)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish")] = False,
) -> None:
    """Re-read a time window of one source, as a run of the backfill deployment."""
    from connectors import load_sources, select_sources

    start = parse_when(since, "--since")
    end = parse_when(until, "--until") if until else None
    if end is not None and end <= start:
        raise InputError("--until must be later than --since")
    s = settings(ctx)
    select_sources(load_sources(s.sources_file), [source])
    params = {"source": source, "since": start.isoformat(), "until": end.isoformat() if end else None}
    _run_deployment(s, "backfill/backfill", params, wait)


@app.command()
@friendly
def reindex(ctx: typer.Context, wait: Annotated[bool, typer.Option(help="Wait for the run to finish")] = False) -> None:
    """Rebuild the whole index into a new collection and switch to it, as a run of the reindex deployment."""
    _run_deployment(settings(ctx), "reindex/reindex", {}, wait)


@app.command()
@friendly
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question")],
    mode: Annotated[str, typer.Option(help="prompt, rag-token or closed-book")] = "prompt",
    k: Annotated[int, typer.Option("--k", "-k", help="Passages to retrieve")] = 5,
    recent: Annotated[float | None, typer.Option(help="Only passages published in the last N days")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Answer as on this date: nothing published later (2025-07-18)")
    ] = None,
) -> None:
    """Answer from the freshest passages with the base model plus the champion adapter, citing sources."""
    from answering.requests import check_question, recent_since
    from cli.views import print_answer_end, to_json
    from flows.runtime import Runtime

    question = check_question(question, mode, k)  # a question, mode and --k that will do, before any model loads
    recent_since(recent)  # refuses a non-positive or absurd --recent before the model loads
    _check_sources(settings(ctx), source)
    when = parse_when(as_of, "--as-of") if as_of else None
    if when is not None and len(as_of.strip()) == 10:  # a bare date: the whole of that day
        when += timedelta(days=1, microseconds=-1)
    s = settings(ctx)
    from cli.api_client import find_api

    client = find_api(s)
    stream = None if as_json else (lambda piece: console.print(piece, end="", markup=False, highlight=False))
    options = {"k": k, "recent_days": recent, "sources": source or None, "as_of": when.isoformat() if when else None}
    answer = client.ask(question, mode=mode, options=options, on_text=stream) if client else None
    if answer is None:  # no running `kup api` answered: the model loads here
        if not s.reader_url:  # a model server writes the answers: nothing to prepare here
            announce_preparation(s, s.reader)
        with Runtime(s) as rt:
            answer = rt.answerer.answer(
                question, mode=mode, k=k, recent_days=recent, sources=source or None, on_text=stream, as_of=when
            )
    if as_json:
        console.print_json(to_json(answer.as_dict()))
    else:
        print_answer_end(answer, console, err_console)


app.command()(cli_training.finetune)
app.add_typer(cli_training.adapters_app, name="adapters")
app.add_typer(models_app, name="models")
app.add_typer(cli_events.events_app, name="events")
app.command()(cli_events.watch)
app.command()(serve.api)
app.command()(serve.mcp)
app.command()(serve.up)


if __name__ == "__main__":
    app()
