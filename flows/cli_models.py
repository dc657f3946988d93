"""``kup models prepare``: make the models ready ahead of time, so the first ``kup ask`` does not wait a minute.

The packaged SmolLM2 ships as a 4-bit GGUF; answering and training use an fp32 copy that is written once into
the data directory. Whoever triggers that first is told so in one line, before it starts.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from flows.cli_shared import console, err_console, friendly, settings
from flows.settings import Settings

models_app = typer.Typer(help="The language and embedding models kup uses.", no_args_is_help=True)


def disk_size(path: Path) -> str:
    """A file's or directory's size on disk, in MB."""
    if not path.exists():
        return "not a local path"
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files) / 1e6:,.0f} MB"


def preparing_notice(s: Settings) -> str | None:
    """The one line to print before the base model is loaded, when loading it de-quantizes it first."""
    from training.base_model import DEFAULT_BASE, PACKAGED, pending_preparation

    cache = pending_preparation(s.base_model, s.data_path)
    if cache is None:
        return None
    model = PACKAGED[s.base_model or DEFAULT_BASE]
    return (
        f"preparing the language model once: de-quantizing {model.gguf_name} into {cache} "
        f"(~{model.prepared_mb:,} MB, about a minute; `kup models prepare` does it ahead of time)"
    )


def announce_preparation(s: Settings) -> None:
    if notice := preparing_notice(s):
        err_console.print(notice, markup=False)


@models_app.command("prepare")
@friendly
def prepare() -> None:
    """Prepare the base language model (de-quantized once into the data dir) and load the embedding model."""
    from indexing import DenseEncoder
    from training.base_model import resolve_base

    s = settings()
    announce_preparation(s)
    started = time.perf_counter()
    pending = preparing_notice(s) is not None
    name, path = resolve_base(s.base_model, s.data_path)
    done = f"prepared in {time.perf_counter() - started:.0f} s" if pending else "ready, nothing to do"
    console.print(f"language model {name}: {path} ({disk_size(path)}), {done}", markup=False)

    started = time.perf_counter()
    dense = DenseEncoder(s.embedding_model)
    dense.encode(["warm up"])
    console.print(
        f"embedding model: {dense.model_ref} ({disk_size(Path(dense.model_ref))}, {dense.dimension} dimensions), "
        f"loaded in {time.perf_counter() - started:.0f} s",
        markup=False,
    )
