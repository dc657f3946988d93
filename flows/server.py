"""A local Prefect server for ``kup up``: found when reachable, started (SQLite in the data dir) when not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from answering.api_guards import is_loopback
from errors import ConfigError
from flows.dead_runs import HEARTBEAT_SECONDS
from flows.local_secrets import owner_only_secret
from flows.settings import Settings


def api_reachable(api_url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def dashboard_url(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/api")


def prefect_env(settings: Settings, *, api_url: str | None = None) -> dict[str, str]:
    """Environment for Prefect processes of this pipeline: its own home, no telemetry, our API, and a runner
    that starts event-triggered runs within about 2 s."""
    env = {
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "connectors,indexing,training",
        # The runner looks for runs to start every 10 s by default: most of an event-driven refresh's wait
        # (bench/freshness.py). Every 2 s costs one small API query per poll.
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        # Each flow run says it is alive every 30 s (Prefect's minimum), so a run whose process is gone is found
        # by its silence and crashed, freeing its deployment's concurrency slot (flows/dead_runs.py).
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if "PREFECT_API_AUTH_STRING" not in os.environ and (credential := server_credential(settings)):
        env["PREFECT_API_AUTH_STRING"] = credential  # the server `kup up` started beyond loopback wants it
    return env


AUTH_FILE = "server-auth"  # in PREFECT_HOME, owner-only: the credential of a server bound beyond loopback


def server_credential(settings: Settings, *, create: bool = False) -> str | None:
    """The basic-auth credential ('kup:<random>') of the Prefect server ``kup up`` starts beyond loopback, made
    owner-only in the data directory when ``create``; None when there is none."""
    path = settings.prefect_home / AUTH_FILE
    return owner_only_secret(path, lambda: f"kup:{secrets.token_urlsafe(24)}", create=create)


def server_needs_credential(settings: Settings) -> bool:
    return not is_loopback(settings.prefect_server_host)


def start_server(settings: Settings, *, timeout: float = 90.0) -> subprocess.Popen:
    """Start the Prefect server for ``settings.prefect_api_url`` and wait until it answers.

    It is Prefect's own server (API, dashboard, services) behind a Host and Origin check (``flows.server_app``),
    listening on ``KUP_PREFECT_SERVER_HOST`` (127.0.0.1). Beyond loopback it also requires basic auth:
    ``PREFECT_SERVER_API_AUTH_STRING`` when set, else a credential made owner-only in the data directory; this
    process and the runs it starts send it as ``PREFECT_API_AUTH_STRING``.
    """
    parts = urlsplit(settings.prefect_api_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(
            f"no Prefect server answers at {settings.prefect_api_url}, and kup only starts one on this "
            "machine; start it there or set KUP_PREFECT_API_URL to a local address"
        )
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = Path(settings.prefect_home) / "server.log"
    port = parts.port or 4200
    bind = settings.prefect_server_host
    env = {**os.environ, **prefect_env(settings)}
    env.pop("PREFECT_API_URL", None)  # the server itself must not talk to another API
    env["PREFECT_UI_API_URL"] = settings.prefect_api_url  # the dashboard's own calls (default: port 4200)
    # Concurrency leases on disk (PREFECT_HOME/concurrency_leases), not in the server's memory: a slot taken
    # before a restart is still known after it, and expires there if its run never comes back.
    env.setdefault("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", "prefect.server.concurrency.lease_storage.filesystem")
    hosts = settings.prefect_hosts
    if server_needs_credential(settings):
        credential = os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or server_credential(settings, create=True)
        env["PREFECT_SERVER_API_AUTH_STRING"] = credential
        # Prefect's client setting, where Prefect reads it: this process's client and the flow runs its runner starts
        # (children given this environment, no other way in). The server itself gets its own ``env`` above.
        os.environ.setdefault("PREFECT_API_AUTH_STRING", credential)
        hosts += [socket.gethostname(), socket.getfqdn()]  # the names a team reaches this machine by
        if "PREFECT_UI_API_URL" not in os.environ:  # the dashboard seen from other machines calls this one
            env["PREFECT_UI_API_URL"] = f"http://{socket.getfqdn()}:{port}/api"
    env["KUP_PREFECT_ALLOWED_HOSTS"] = ",".join(hosts)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.server_app", "--host", bind, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api_reachable(settings.prefect_api_url):
            return process
        if process.poll() is not None:
            raise ConfigError(f"the Prefect server exited at start (code {process.returncode}); see {log_path}")
        time.sleep(0.5)
    process.terminate()
    raise ConfigError(f"the Prefect server did not answer within {timeout:.0f}s; see {log_path}")


def stop_server(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


class _QuietCancelledAtShutdown(logging.Filter):
    """Drops asyncio's "Exception in callback" record for a task cancelled as the loop stops: Prefect's runner
    control channel has one connection task per running flow run, and stopping ``kup up`` while a run is
    connected cancels it; the run itself is handled by the runner's clean-up. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


def serve_deployments(deployments: list) -> None:
    """Serve runner deployments until Ctrl-C or SIGTERM, both ending the same clean way.

    Prefect's ``serve`` installs a SIGTERM handler that calls ``Runner.stop()`` from inside the running event
    loop, which only creates the ``astop`` coroutine and never awaits it ("coroutine 'Runner.astop' was never
    awaited"). Here SIGTERM interrupts like Ctrl-C: the loop is cancelled and the runner leaves through its own
    clean-up, pausing its schedules.
    """

    def interrupt(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    # From here on, also while Prefect's runner is imported, the deployments registered and before the runner
    # installs its own handler (seconds on a busy machine), SIGTERM ends serving the clean way.
    previous = signal.signal(signal.SIGTERM, interrupt)
    quiet = _QuietCancelledAtShutdown()
    logging.getLogger("asyncio").addFilter(quiet)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            from prefect.runner import Runner

            class _Runner(Runner):
                handle_sigterm = staticmethod(interrupt)

            runner = _Runner(pause_on_shutdown=True)
            for deployment in deployments:
                deployment.work_pool_name = None  # served deployments need no work pool
                runner.add_deployment(deployment)
            asyncio.run(runner.start())
    finally:
        logging.getLogger("asyncio").removeFilter(quiet)
        signal.signal(signal.SIGTERM, previous)
