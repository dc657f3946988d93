"""Shared bench helpers: the repository root, an offline env, peak memory, one JSON line out."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def machine() -> dict:
    import torch

    return {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0]}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(name: str, figures: dict) -> None:
    print(json.dumps({"bench": name, **figures, "machine": machine()}, default=str))


def fresh_pg_database(admin_url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database on the server of ``admin_url``; its name."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name
