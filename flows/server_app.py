"""The Prefect server ``kup up`` starts: Prefect's own app (API, dashboard and services, as ``prefect server start``
serves it) behind a Host and Origin check.

Prefect's server checks neither. Without them a web page the user visits can rebind its own name to 127.0.0.1 and
read the API with the user's browser (``POST /api/block_documents/filter {"include_secrets": true}`` gives away
every Secret block), or post to it from another site. Here:

- a request whose ``Host`` is not a name this server is reached by gets 400 (stops DNS rebinding);
- a request, or a websocket, whose ``Origin`` is not this server's own gets 403 (stops cross-site requests);
- beyond loopback, Prefect's own basic auth (``PREFECT_SERVER_API_AUTH_STRING``) is required as well
  (``flows.server`` makes and keeps the credential).

Run as ``python -m flows.server_app --host H --port P``; ``KUP_PREFECT_ALLOWED_HOSTS`` (comma-separated) adds
Host names, ``*`` accepts any (for a server behind a proxy that checks them, or one protected by its credential).
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

from answering.api_guards import LOCAL_HOSTS, host_served, refuse, scope_header, served_hosts
from flows.settings import comma_list


def _origin_matches(origin: str, host_header: str) -> bool:
    """Whether ``Origin`` names the server the request was sent to (the dashboard's own pages)."""
    parts = urlsplit(origin.strip())
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.strip().lower()


class HostOriginGuard:
    """ASGI middleware: Host must be one of ``hosts`` (``*``: any); ``Origin``, when sent, must be the Host itself."""

    def __init__(self, app, hosts: tuple[str, ...]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)  # lifespan: Prefect's services start and stop here
        if not host_served(scope, self.hosts):
            return await self._refuse(
                scope, send, 400, "this host name is not served here; see KUP_PREFECT_ALLOWED_HOSTS"
            )
        origin = scope_header(scope, b"origin")
        if origin is not None and not _origin_matches(origin, scope_header(scope, b"host") or ""):
            return await self._refuse(scope, send, 403, "requests from another site's pages are refused")
        return await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope, send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":  # closed before it is accepted: the handshake fails with 403
            await send({"type": "websocket.close", "code": 1008})
            return
        await refuse(send, status, detail)


def allowed_hosts(bind_host: str, extra: str) -> tuple[str, ...]:
    """Host names served: this machine's loopback names, the bound address, and ``extra`` (comma-separated)."""
    names = [bind_host] if bind_host not in ("0.0.0.0", "::", "") else []
    return served_hosts([*LOCAL_HOSTS, *names, *comma_list(extra)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    args = parser.parse_args(argv)

    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import PREFECT_SERVER_API_KEEPALIVE_TIMEOUT

    # What `prefect server start` runs in the foreground: the API, the dashboard and the services in one process.
    app = HostOriginGuard(
        create_app(final=True), allowed_hosts(args.host, os.environ.get("KUP_PREFECT_ALLOWED_HOSTS", ""))
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
        log_level="warning",
    )


if __name__ == "__main__":
    main()
