"""The adapter registry: every trained adapter under the data directory, and which one is the champion.

Each adapter is a directory in the Hugging Face / peft layout (``adapter_config.json``,
``adapter_model.safetensors``) plus ``manifest.json`` (recipe, metrics, verdict, data watermark,
parent adapter, time) and ``recipe.yaml``. A new adapter is written to a hidden staging directory
and renamed into place, so a reader never sees one half-written. The champion is named by
``champion.json``, replaced atomically on promotion and rollback; it keeps the history of
earlier champions, which is what rollback walks back through.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from errors import ConfigError, InputError

POINTER = "champion.json"


@dataclass(frozen=True)
class Adapter:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.manifest.get("verdict", {}).get("passed"))


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class AdapterRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(root / ".lock"), timeout=60)

    # -- reading ------------------------------------------------------------------------------

    def _pointer(self) -> dict[str, Any]:
        path = self.root / POINTER
        return json.loads(path.read_text()) if path.exists() else {"id": None, "history": []}

    def get(self, adapter_id: str) -> Adapter:
        path = self.root / adapter_id
        manifest = path / "manifest.json"
        if adapter_id.startswith(".") or "/" in adapter_id or not manifest.exists():
            known = ", ".join(a.id for a in self.list()) or "none yet"
            raise ConfigError(f"no adapter {adapter_id!r}; known adapters: {known}")
        return Adapter(adapter_id, path, json.loads(manifest.read_text()))

    def list(self) -> list[Adapter]:
        found = [self.get(p.name) for p in self.root.iterdir() if (p / "manifest.json").exists()]
        return sorted(found, key=lambda a: a.manifest.get("created_at", ""))

    def champion(self) -> Adapter | None:
        current = self._pointer().get("id")
        return self.get(current) if current else None

    def history(self) -> list[str]:
        return list(self._pointer().get("history", []))

    # -- writing ------------------------------------------------------------------------------

    def add(self, write: Callable[[Path], None], manifest: dict[str, Any]) -> Adapter:
        """Store a new adapter: ``write(directory)`` saves its files; the manifest is added, then it appears."""
        created = datetime.now(UTC)
        adapter_id = f"{created:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        staging = self.root / f".staging-{adapter_id}"
        staging.mkdir()
        try:
            write(staging)
            full = {"id": adapter_id, "created_at": created.isoformat(), **manifest}
            (staging / "manifest.json").write_text(json.dumps(full, indent=2, default=str))
            os.rename(staging, self.root / adapter_id)  # appears complete, or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(adapter_id)

    def promote(self, adapter_id: str, *, force: bool = False) -> Adapter:
        """Make ``adapter_id`` the champion (one atomic switch); the old champion goes onto the history.

        An adapter the gate rejected is refused unless ``force``: nothing serves without passing the gate
        or a person saying so.
        """
        adapter = self.get(adapter_id)
        if not adapter.passed and not force:
            reasons = "; ".join(adapter.manifest.get("verdict", {}).get("reasons", [])) or "no reasons recorded"
            raise InputError(f"adapter {adapter_id} failed the gate ({reasons}); pass --force to promote it anyway")
        with self._lock:
            pointer = self._pointer()
            if pointer.get("id") == adapter_id:
                return adapter
            history = pointer.get("history", [])
            if pointer.get("id"):
                history = [*history, pointer["id"]]
            _write_atomically(
                self.root / POINTER,
                json.dumps({"id": adapter_id, "history": history, "changed_at": datetime.now(UTC).isoformat()}),
            )
        return adapter

    def rollback(self) -> Adapter | None:
        """Put the previous champion back (None: back to the bare base model)."""
        with self._lock:
            pointer = self._pointer()
            if not pointer.get("id"):
                raise ConfigError("there is no champion adapter to roll back from")
            history = pointer.get("history", [])
            previous = history[-1] if history else None
            _write_atomically(
                self.root / POINTER,
                json.dumps({"id": previous, "history": history[:-1], "changed_at": datetime.now(UTC).isoformat()}),
            )
        return self.get(previous) if previous else None
