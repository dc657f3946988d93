"""Secrets this pipeline makes for itself and keeps in its data directory, readable by their owner only."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from errors import ConfigError


def owner_only_secret(path: Path, make: Callable[[], str], *, create: bool = False) -> str | None:
    """The secret in ``path``; made with ``make()`` and written owner-only (0600) first when ``create`` and absent.

    None when there is none yet. A file that others may read is refused in one sentence: a secret that has been
    readable by other users of the machine is no longer one.
    """
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process made it first
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(make())
    try:
        mode = path.stat().st_mode
        value = path.read_text().strip()
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} can be read by other users of this machine; delete it (a new one is made) or chmod 600 it"
        )
    return value or None
