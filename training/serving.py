"""The serving fleet hears of a new champion: each configured vLLM server loads it under one stable name.

vLLM serves LoRA adapters loaded at run time (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) through two routes,
``POST /v1/unload_lora_adapter {"lora_name"}`` and ``POST /v1/load_lora_adapter {"lora_name", "lora_path"}``.
When the champion changes (the gate promoted a candidate, or a person promoted or rolled back), kup unloads the
stable name and loads the champion's directory under it, so a client asking for that model (``KUP_READER_MODEL``)
gets the new adapter without a restart; after a rollback to the bare base model the name is only unloaded.

Each server is tried a few times with a growing pause. What each was told, and whether it took it, is recorded in
the registry's ``announcements.json``: a server that did not take the current champion stays pending, and the next
fine-tune run or ``kup adapters announce`` tries it again. A failure is never silent: it is returned, logged and
recorded.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import httpx

from errors.redact import mask_text
from training.registry import AdapterRegistry, write_atomically

logger = logging.getLogger(__name__)
RECORD = "announcements.json"  # in the registry's directory
MAX_REPLY_BYTES = 4000  # of a server's reply kept for the record


@dataclass(frozen=True)
class ServingServer:
    """A vLLM server to tell; ``adapters_dir`` is the registry's directory as that server sees it (shared storage
    mounted elsewhere), None: the same path as here."""

    url: str
    adapter_name: str = "kup"
    api_key: str | None = None
    adapters_dir: str | None = None


@dataclass(frozen=True)
class Announcement:
    server: str  # its URL, credentials masked
    adapter: str | None  # the champion announced (None: the bare base model, the name unloaded)
    ok: bool
    message: str
    attempts: int
    at: str


def adapter_path(server: ServingServer, registry: AdapterRegistry, adapter_id: str) -> str:
    """Where ``server`` finds the adapter's directory."""
    root = server.adapters_dir.rstrip("/") if server.adapters_dir else str(registry.root.resolve())
    return f"{root}/{adapter_id}"


def _post(client: httpx.Client, server: ServingServer, route: str, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.api_key}"} if server.api_key else {}
    return client.post(f"{server.url.rstrip('/')}/v1/{route}", json=body, headers=headers)


def _reply(response: httpx.Response) -> str:
    return mask_text(" ".join(response.text[:MAX_REPLY_BYTES].split()))[:300] or f"HTTP {response.status_code}"


def tell(server: ServingServer, registry: AdapterRegistry, adapter_id: str | None, *, timeout: float = 60.0) -> str:
    """Unload the stable name, then load ``adapter_id`` under it; what the server said, or ``RuntimeError``."""
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))) as client:
        unloaded = _post(client, server, "unload_lora_adapter", {"lora_name": server.adapter_name})
        if unloaded.status_code not in (200, 400, 404):  # 400/404: the name was not loaded
            raise RuntimeError(f"unload answered HTTP {unloaded.status_code}: {_reply(unloaded)}")
        if adapter_id is None:
            return f"{server.adapter_name} unloaded: answers come from the base model"
        path = adapter_path(server, registry, adapter_id)
        loaded = _post(client, server, "load_lora_adapter", {"lora_name": server.adapter_name, "lora_path": path})
        if loaded.status_code != 200:
            raise RuntimeError(f"load of {path} answered HTTP {loaded.status_code}: {_reply(loaded)}")
        return f"{adapter_id} loaded as {server.adapter_name}"


def announce(
    servers: list[ServingServer],
    registry: AdapterRegistry,
    *,
    only_pending: bool = False,
    attempts: int = 3,
    pause: float = 2.0,
    timeout: float = 60.0,
) -> list[Announcement]:
    """Tell each server the current champion (``only_pending``: only those that have not taken it yet); each is
    tried ``attempts`` times, pausing ``pause`` s, then twice that, between tries. Every outcome is recorded."""
    champion = registry.champion()
    adapter_id = champion.id if champion else None
    record = read_record(registry)
    done: list[Announcement] = []
    for server in servers:
        key = mask_text(server.url)
        last = record.get(key)
        if only_pending and last and last["ok"] and last["adapter"] == adapter_id:
            continue
        message, ok, tries = "", False, 0
        for tries in range(1, attempts + 1):
            try:
                message, ok = tell(server, registry, adapter_id, timeout=timeout), True
                break
            except (httpx.HTTPError, RuntimeError) as exc:
                message = str(exc) if isinstance(exc, RuntimeError) else f"not reachable ({type(exc).__name__})"
                if tries < attempts:
                    time.sleep(pause * 2 ** (tries - 1))
        outcome = Announcement(key, adapter_id, ok, mask_text(message), tries, datetime.now(UTC).isoformat())
        if ok:
            logger.info("told %s: %s", key, outcome.message)
        else:
            logger.warning("could not tell %s of champion %s after %d tries: %s", key, adapter_id, tries, message)
        record[key] = asdict(outcome)
        done.append(outcome)
    _write_record(registry, record)
    return done


def pending(servers: list[ServingServer], registry: AdapterRegistry) -> list[str]:
    """The servers (masked URLs) that have not taken the current champion."""
    champion = registry.champion()
    adapter_id = champion.id if champion else None
    record = read_record(registry)
    keys = [mask_text(s.url) for s in servers]
    return [k for k in keys if not (record.get(k, {}).get("ok") and record[k].get("adapter") == adapter_id)]


def failure_sentence(outcomes: list[Announcement]) -> str | None:
    """One sentence naming the servers that did not take the champion, or None."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return None
    named = "; ".join(f"{o.server}: {o.message}" for o in failed)
    return (
        f"the champion {failed[0].adapter or '(none: the base model)'} did not reach {len(failed)} serving "
        f"server(s) after {failed[0].attempts} tries ({named}); `kup adapters announce` tries again"
    )


def read_record(registry: AdapterRegistry) -> dict[str, dict]:
    path = registry.root / RECORD
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(registry: AdapterRegistry, record: dict[str, dict]) -> None:
    write_atomically(registry.root / RECORD, json.dumps(record, indent=2))
