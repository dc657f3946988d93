"""The long-running commands: ``kup api`` (the HTTP API, bounded against half-sent requests), ``kup mcp`` (search,
ask and status as MCP tools, over stdio or behind the API's guards) and ``kup up`` (a local Prefect server behind its
guard, and every deployment served)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli.shared import console, err_console, friendly, point_prefect_at, settings
from errors import InputError, KupError
from flows.settings import Settings


def _export_to_served_runs(s: Settings) -> None:
    """The pipeline the global flags chose, for the flow runs `kup up` serves: Prefect's runner starts each as a
    child process with this process's environment and offers no other way in, so the flags travel as KUP_*."""
    os.environ["KUP_DATA_DIR"] = str(s.data_path)
    os.environ["KUP_SOURCES_FILE"] = str(s.sources_file.expanduser().resolve())
    for key in ("catalog_url", "qdrant_url"):
        if getattr(s, key):
            os.environ[f"KUP_{key.upper()}"] = getattr(s, key)


def _guards(s: Settings, host: str, key: str | None):
    """The limits of kup api and kup mcp's HTTP transport, from the settings."""
    from answering.api_guards import ApiGuards

    return ApiGuards(
        api_key=key,
        allowed_hosts=[host, *s.api_hosts],
        max_body_bytes=s.api_max_body_bytes,
        generate_at_once=s.api_generate_at_once,
        generate_waiting=s.api_generate_waiting,
    )


@friendly
def api(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8077,
) -> None:
    """Serve /search and /ask over HTTP (JSON; OpenAPI schema at /docs). Beyond 127.0.0.1 it needs KUP_API_KEY."""
    from answering.api import create_app
    from answering.api_guards import check_binding
    from answering.http_server import ServerLimits, serve
    from cli.api_client import api_identity, pipeline_id
    from flows.deployments import read_specs
    from flows.health import overdue_after, refresh_every
    from flows.runtime import Runtime

    s = settings(ctx)
    key = s.secret("api_key")  # a prefect-secret:<block> reference is read from the block
    check_binding(host, key)
    guards = _guards(s, host, key)
    with Runtime(s) as rt:
        console.print(f"kup API on http://{host}:{port} (docs at /docs; key {'required' if key else 'off'})")
        every = refresh_every(read_specs())
        overdue = overdue_after(every) if every else None  # kup_refresh_overdue: the rule `kup status` uses
        app_ = create_app(
            rt.answerer,
            guards,
            pipeline=pipeline_id(s),
            catalog=rt.catalog,
            overdue_after=overdue,
            known_sources=rt.known_sources,
            identity=api_identity(s.data_path, create=True),  # what a local `kup search` checks before asking
        )
        limits = ServerLimits(header_timeout=s.api_header_timeout, max_connections=s.api_max_connections)
        serve(app_, host, port, limits)


@friendly
def mcp(
    ctx: typer.Context,
    transport: Annotated[str, typer.Option(help="stdio, or http (streamable HTTP at /mcp)")] = "stdio",
    host: Annotated[str, typer.Option(help="Interface to listen on (http)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (http)")] = 8078,
) -> None:
    """Serve search, ask and status as MCP tools: over stdio for a client that spawns kup (Claude Desktop), or
    streamable HTTP at /mcp behind kup api's guards. Beyond 127.0.0.1 it needs KUP_API_KEY."""
    import json

    from answering.api_guards import check_binding
    from answering.mcp_server import MCP_PATH, http_app, mcp_server
    from cli.views import to_json
    from cli.views_status import status_data
    from flows.deployments import read_specs
    from flows.health import pipeline_health
    from flows.runtime import Runtime

    if transport not in ("stdio", "http"):
        raise InputError(f"--transport must be stdio or http, not {transport!r}")
    s = settings(ctx)
    key = s.secret("api_key") if transport == "http" else None  # stdio: the client that spawned kup is the caller
    if transport == "http":
        check_binding(host, key)
    guards = _guards(s, host, key)
    with Runtime(s) as rt:

        def status() -> dict:
            """What `kup status --json` prints, as JSON values."""
            data = status_data(rt)
            data["health"] = pipeline_health(s, rt.catalog, read_specs()).as_dict()
            return json.loads(to_json(data))

        server = mcp_server(rt.answerer, status, guards, known_sources=rt.known_sources)
        if transport == "stdio":  # stdout carries the protocol alone: everything else goes to stderr
            err_console.print("kup MCP tools (search, ask, status) on stdio", markup=False)
            server.run("stdio")
            return
        from answering.http_server import ServerLimits, serve

        where = f"http://{host}:{port}{MCP_PATH}"
        console.print(f"kup MCP tools on {where} (key {'required' if key else 'off'})", markup=False)
        limits = ServerLimits(header_timeout=s.api_header_timeout, max_connections=s.api_max_connections)
        serve(http_app(server, guards), host, port, limits)


@friendly
def up(ctx: typer.Context) -> None:
    """Start a local Prefect server if none answers, and serve every deployment in prefect.yaml."""
    import signal
    import time

    from flows.deployments import read_specs, runner_deployments
    from flows.server import (
        AUTH_FILE,
        api_reachable,
        dashboard_url,
        serve_deployments,
        server_needs_credential,
        start_server,
        stop_server,
    )

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt  # a service manager's SIGTERM stops cleanly too: the server we started goes with us

    signal.signal(signal.SIGTERM, _terminate)
    s = settings(ctx)
    _export_to_served_runs(s)
    specs = read_specs()
    server = None
    if api_reachable(s.prefect_api_url):
        console.print(f"Using the Prefect server at {s.prefect_api_url}", markup=False)
    else:
        console.print(f"Starting a Prefect server (its database in {s.prefect_home}) ...", markup=False)
        started = time.monotonic()
        server = start_server(s)
        console.print(f"Prefect server ready in {time.monotonic() - started:.0f} s", markup=False)
    point_prefect_at(s.prefect_api_url)  # this process's Prefect client and, through the runner, the served runs
    try:
        console.print("Loading the flows declared in prefect.yaml ...")
        deployments = runner_deployments(specs)
        from flows.alerts import apply_alerts

        console.print("Alerts: " + "; ".join(apply_alerts(s)), markup=False)
        from flows.health import Monitor

        monitor = Monitor(s, specs, lambda line: console.print(line, markup=False))
        monitor.check()  # runs a stopped `kup up` left behind are crashed now, their slots freed
        monitor.start()
        sign_in = ""
        if server is not None and server_needs_credential(s):
            where = "PREFECT_SERVER_API_AUTH_STRING" if os.environ.get("PREFECT_SERVER_API_AUTH_STRING") else None
            where = where or f"{s.prefect_home / AUTH_FILE}, readable by you only"
            sign_in = f" (sign in with the credential in {where})"
        console.print(f"Dashboard: {dashboard_url(s.prefect_api_url)}{sign_in}", markup=False)
        console.print("Serving: " + ", ".join(spec.full_name for spec in specs) + "  (Ctrl-C stops)", markup=False)
        from cli.up_progress import announce_first_run, long_lived_jobs, start_now
        from connectors import load_sources

        announce_first_run(s.prefect_api_url, specs, console)
        try:  # a listener and a watcher from the start, not from the next round 10 minutes
            jobs = [job for job in long_lived_jobs(load_sources(s.sources_file)) if job in {x.name for x in specs}]
        except KupError:
            jobs = []  # the refresh says what is wrong with the sources file, once a minute
        start_now(s.prefect_api_url, jobs, console)
        serve_deployments(deployments)
        monitor.stop()
    finally:
        stop_server(server)
