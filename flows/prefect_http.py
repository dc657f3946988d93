"""kup's own calls to the Prefect server's REST API (filters and state changes Prefect's client does not batch),
carrying the server's credential when it has one: ``PREFECT_API_AUTH_STRING``, as Prefect's own client does."""

from __future__ import annotations

import os

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
