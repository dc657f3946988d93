"""The adapter registry: every trained adapter under the data directory, and which one is the champion.

Each adapter is a directory in the Hugging Face / peft layout (``adapter_config.json``,
``adapter_model.safetensors``) plus ``manifest.json`` (recipe, metrics, verdict, data watermark,
parent adapter, time) and ``recipe.yaml``. A new adapter is written to a hidden staging directory
and renamed into place, so a reader never sees one half-written; a staging directory left by a
killed process is ignored, and removed once it is old enough that no writer can still own it.
The champion is named by ``champion.json``, replaced atomically on promotion and rollback; it keeps
the history of earlier champions, which is what rollback walks back through. A directory whose
manifest is unreadable is skipped with a warning rather than breaking every command.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from errors import ConfigError, InputError

logger = logging.getLogger(__name__)

POINTER = "champion.json"
STAGING_PREFIX = ".staging-"
STALE_AFTER_S = 30 * 60  # a staging directory untouched this long belongs to a writer that died


@dataclass(frozen=True)
class Adapter:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def passed(self) -> bool:
        verdict = self.manifest.get("verdict")
        return isinstance(verdict, dict) and bool(verdict.get("passed"))


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path``: whole, or not at all (a temporary, fsynced, renamed over it)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _is_adapter_name(name: str) -> bool:
    """Whether ``name`` could be an adapter's directory: hidden names (staging, temporaries) never are."""
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the adapter directory ``path``; ConfigError saying what is wrong with it otherwise."""
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"adapter {path.name} has an unreadable manifest.json ({exc}); {_fix(path)}") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"adapter {path.name} has a manifest.json that is not a JSON object; {_fix(path)}")
    created = manifest.get("created_at")
    try:
        datetime.fromisoformat(created)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"adapter {path.name} has no valid created_at in manifest.json; {_fix(path)}") from None
    return manifest


def _fix(path: Path) -> str:
    return f"restore its manifest or remove the directory {path}"


def _newest_mtime(directory: Path) -> float:
    newest = directory.stat().st_mtime
    for entry in directory.iterdir():
        newest = max(newest, entry.stat().st_mtime)
    return newest


class AdapterRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(root / ".lock"), timeout=60)
        self._remove_stale_staging()

    # -- reading ------------------------------------------------------------------------------

    def _pointer(self) -> dict[str, Any]:
        path = self.root / POINTER
        if not path.exists():
            return {"id": None, "history": []}
        try:
            pointer = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); promote an adapter again or delete the file") from None
        current, history = (pointer.get("id"), pointer.get("history", [])) if isinstance(pointer, dict) else (0, [])
        valid_history = isinstance(history, list) and all(isinstance(h, str) for h in history)
        if not isinstance(current, str | None) or not valid_history:
            raise ConfigError(f"{path} does not name an adapter and its history; promote an adapter again")
        return {"id": current, "history": history}

    def _known(self) -> str:
        return ", ".join(a.id for a in self.list()) or "none yet"

    def get(self, adapter_id: str) -> Adapter:
        """The adapter ``adapter_id``; ConfigError when there is none or its manifest is broken."""
        path = self.root / adapter_id
        if not _is_adapter_name(adapter_id) or not (path / "manifest.json").is_file():
            raise ConfigError(f"no adapter {adapter_id!r}; known adapters: {self._known()}")
        return Adapter(adapter_id, path, _read_manifest(path))

    def list(self) -> list[Adapter]:
        """Every complete adapter, oldest first; broken ones are skipped with a warning."""
        found: list[Adapter] = []
        for path in self.root.iterdir():
            if not _is_adapter_name(path.name) or not (path / "manifest.json").is_file():
                continue
            try:
                found.append(Adapter(path.name, path, _read_manifest(path)))
            except ConfigError as exc:
                logger.warning("skipped: %s", exc)
        return sorted(found, key=lambda a: (a.manifest["created_at"], a.id))

    def champion(self) -> Adapter | None:
        current = self._pointer().get("id")
        if not current:
            return None
        try:
            return self.get(current)
        except ConfigError as exc:
            raise ConfigError(
                f"the champion {current!r} named in {POINTER} cannot be used ({exc}); "
                "make another the champion with `kup adapters promote ID`"
            ) from None

    def history(self) -> list[str]:
        return list(self._pointer().get("history", []))

    # -- writing ------------------------------------------------------------------------------

    def _remove_stale_staging(self) -> None:
        """Remove staging directories and pointer temporaries left by a writer killed long enough ago."""
        now = time.time()
        for path in self.root.iterdir():
            if not (path.name.startswith(STAGING_PREFIX) or path.name.startswith(f".{POINTER}.")):
                continue
            try:
                age = now - (_newest_mtime(path) if path.is_dir() else path.stat().st_mtime)
                if age < STALE_AFTER_S:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                logger.info("removed %s, left by an interrupted write %.0f min ago", path, age / 60)
            except OSError as exc:  # gone meanwhile, or a read-only data directory: harmless either way
                logger.debug("could not remove %s: %s", path, exc)

    def add(self, write: Callable[[Path], None], manifest: dict[str, Any]) -> Adapter:
        """Store a new adapter: ``write(directory)`` saves its files; the manifest is added, then it appears."""
        self._remove_stale_staging()
        created = datetime.now(UTC)
        adapter_id = f"{created:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        staging = self.root / f"{STAGING_PREFIX}{adapter_id}"
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
        with self._lock:
            adapter = self.get(adapter_id)
            if not adapter.passed and not force:
                verdict = adapter.manifest.get("verdict")
                reasons = verdict.get("reasons") if isinstance(verdict, dict) else None
                reasons = "; ".join(map(str, reasons)) if isinstance(reasons, list) and reasons else None
                raise InputError(
                    f"adapter {adapter_id} failed the gate ({reasons or 'no reasons recorded'}); "
                    "pass --force to promote it anyway"
                )
            pointer = self._pointer()
            if pointer.get("id") == adapter_id:
                return adapter
            history = pointer.get("history", [])
            if pointer.get("id"):
                history = [*history, pointer["id"]]
            write_atomically(
                self.root / POINTER,
                json.dumps({"id": adapter_id, "history": history, "changed_at": datetime.now(UTC).isoformat()}),
            )
        return adapter

    def rollback(self) -> Adapter | None:
        """Put the previous champion back (None: back to the bare base model).

        The previous adapter is checked before the pointer is touched, and the pointer is written once: a
        previous champion that was deleted or broken is refused and the current one stays in service.
        """
        with self._lock:
            pointer = self._pointer()
            current = pointer.get("id")
            if not current:
                raise ConfigError("there is no champion adapter to roll back from")
            history = pointer.get("history", [])
            previous = history[-1] if history else None
            adapter = None
            if previous:
                try:
                    adapter = self.get(previous)
                except ConfigError as exc:
                    raise ConfigError(
                        f"cannot roll back to {previous!r}, the previous champion ({exc}); {current} stays the "
                        "champion: make another the champion with `kup adapters promote ID`"
                    ) from None
            write_atomically(
                self.root / POINTER,
                json.dumps({"id": previous, "history": history[:-1], "changed_at": datetime.now(UTC).isoformat()}),
            )
        return adapter
