"""``kup models prepare``: make the models ready ahead of time, so the first ``kup ask`` does not wait a minute.

The packaged SmolLM2 ships as a 4-bit GGUF; answering and training use an fp32 copy that is written once into
the data directory. Whoever triggers that first is told so in one line, before it starts.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from cli.shared import console, err_console, friendly, settings
from flows.settings import Settings

models_app = typer.Typer(help="The language and embedding models kup uses.", no_args_is_help=True)


def disk_size(path: Path) -> str:
    """A file's or directory's size on disk, in MB."""
    if not path.exists():
        return "not a local path"
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files) / 1e6:,.0f} MB"


def preparing_notice(s: Settings, model: str | None = None) -> str | None:
    """The one line to print before a model is loaded (the base model unless ``model`` names another, such as
    the reader), when loading it de-quantizes it first."""
    from training.base_model import DEFAULT_BASE, PACKAGED, pending_preparation

    ref = model or s.base_model
    cache = pending_preparation(ref, s.data_path)
    if cache is None:
        return None
    packaged = PACKAGED[ref or DEFAULT_BASE]
    return (
        f"preparing the language model once: de-quantizing {packaged.gguf_name} into {cache} "
        f"(~{packaged.prepared_mb:,} MB, about a minute; `kup models prepare` does it ahead of time)"
    )


def announce_preparation(s: Settings, model: str | None = None) -> None:
    if notice := preparing_notice(s, model):
        err_console.print(notice, markup=False)


@models_app.command("prepare")
@friendly
def prepare(ctx: typer.Context) -> None:
    """Prepare the language models (the base model fine-tuning trains, the reader that answers; each de-quantized
    once into the data dir) and load the embedding model."""
    from indexing import DenseEncoder
    from training.base_model import resolve_base

    s = settings(ctx)
    for role, ref in (("language model", s.base_model), ("reader", s.reader)):
        if role == "reader" and ref == s.base_model:
            continue  # the base model answers too: prepared above
        announce_preparation(s, ref)
        started = time.perf_counter()
        pending = preparing_notice(s, ref) is not None
        name, path = resolve_base(ref, s.data_path)
        done = f"prepared in {time.perf_counter() - started:.0f} s" if pending else "ready, nothing to do"
        console.print(f"{role} {name}: {path} ({disk_size(path)}), {done}", markup=False)

    started = time.perf_counter()
    dense = DenseEncoder(s.embedding_model)
    dense.encode(["warm up"])
    console.print(
        f"embedding model: {dense.model_ref} ({disk_size(Path(dense.model_ref))}, {dense.dimension} dimensions), "
        f"loaded in {time.perf_counter() - started:.0f} s",
        markup=False,
    )
