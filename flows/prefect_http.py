"""kup's own calls to the Prefect server's REST API (filters and state changes Prefect's client does not batch),
carrying the server's credential when it has one: ``PREFECT_API_AUTH_STRING``, as Prefect's own client does."""

from __future__ import annotations

import os
from datetime import datetime

import httpx


def prefect_auth() -> httpx.BasicAuth | None:
    """Basic auth from ``PREFECT_API_AUTH_STRING`` ('user:password'), or None when the server needs none.

    Read from the environment only (kup commands put the credential of a server ``kup up`` started there): the
    status command must answer without importing Prefect.
    """
    value = os.environ.get("PREFECT_API_AUTH_STRING")
    if not value:
        return None
    user, _, password = value.partition(":")
    return httpx.BasicAuth(user, password)


def prefect_client(api_url: str, timeout: float | httpx.Timeout = 10.0) -> httpx.Client:
    """A client for the Prefect API at ``api_url``, paths relative to it (``client.post("/flow_runs/filter")``)."""
    return httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, auth=prefect_auth())


def _first_run(api_url: str, deployment: str, where: dict, sort: str, timeout: float) -> dict | None:
    """The first run of ``deployment`` (its name) matching the flow-run filter ``where`` in ``sort`` order, or None
    (also when the server does not answer)."""
    body = {"deployments": {"name": {"any_": [deployment]}}, "flow_runs": where, "sort": sort, "limit": 1}
    try:
        with prefect_client(api_url, timeout) as client:
            response = client.post("/flow_runs/filter", json=body)
        response.raise_for_status()
        runs = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return runs[0] if runs else None


def first_scheduled_run(api_url: str, deployment: str, timeout: float = 5.0) -> datetime | None:
    """Expected start of the earliest scheduled run of ``deployment`` (its name), or None when none is scheduled."""
    run = _first_run(
        api_url, deployment, {"state": {"type": {"any_": ["SCHEDULED"]}}}, "EXPECTED_START_TIME_ASC", timeout
    )
    if not run or not run.get("expected_start_time"):
        return None
    return datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))


def first_started_run(api_url: str, deployment: str, after: datetime, timeout: float = 5.0) -> dict | None:
    """The first run of ``deployment`` that started after ``after`` (its id, name and start time), or None."""
    run = _first_run(api_url, deployment, {"start_time": {"after_": after.isoformat()}}, "START_TIME_ASC", timeout)
    return run if run and run.get("start_time") else None
