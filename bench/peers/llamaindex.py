"""The peer kup is measured against: LlamaIndex's IngestionPipeline into a local QdrantVectorStore.

Run by ``bench/side_by_side.py`` (``run_peer``), or by hand:

    .venv/bin/python bench/peers/llamaindex.py --docs first.jsonl --edited second.jsonl --model DIR

The first call makes the peer's own virtualenv under ``~/.cache/kup/peers/llamaindex-venv``
(``KUP_PEER_VENV`` moves it) with the pinned packages below, so LlamaIndex's dependencies never
touch kup's environment; later calls reuse it. The worker (``--worker``, run by that virtualenv's
Python) does what a LlamaIndex user does: a ``SentenceSplitter`` of 256 tokens (counted with the
embedding model's own tokenizer, so chunks fit the model; its default overlap of 200 unless
``--overlap`` says otherwise), ``HuggingFaceEmbedding`` on the same
all-MiniLM-L6-v2 directory kup uses, a ``QdrantVectorStore`` on a local (file) Qdrant in a temporary
directory, and the pipeline's document store with the upsert strategy, so the second run re-embeds
only documents whose text changed (all of their chunks) and skips the rest. One JSON line out.
This file uses the standard library only at module level: kup's venv imports it, the peer's runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PINS = [
    "llama-index-core==0.14.25",
    "llama-index-embeddings-huggingface==0.8.0",
    "llama-index-vector-stores-qdrant==0.10.4",
    # The CPU build: on these machines pip finds it on disk (pip's find-links); elsewhere point
    # PIP_EXTRA_INDEX_URL at a CPU wheel index, or pip takes a multi-GB CUDA build.
    "torch==2.13.0",
]
CHUNK_TOKENS = 256
CHUNK_OVERLAP = 200  # SentenceSplitter's default, kept as a user who only sets the size gets (the run)
EMBED_BATCH = 64  # as kup's embed_batch_size (LlamaIndex's default is 10): the same batching for both
VENV = Path(os.environ.get("KUP_PEER_VENV", Path.home() / ".cache" / "kup" / "peers" / "llamaindex-venv"))
READY = "kup-peer-ready.json"  # written after a complete install, with the pins it holds


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path = VENV, log=sys.stderr) -> Path:
    """The peer's virtualenv with ``PINS`` installed; made (or remade after a broken install) on first use."""
    ready = venv / READY
    if ready.exists() and json.loads(ready.read_text()).get("pins") == PINS and venv_python(venv).exists():
        return venv_python(venv)
    print(f"peer: installing {', '.join(PINS)} into {venv} (once; a few minutes)", file=log, flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *PINS], stdout=log, stderr=log)
    if result.returncode != 0:
        raise SystemExit(f"peer: installing {PINS} into {venv} failed (exit {result.returncode}); see the pip output")
    ready.write_text(json.dumps({"pins": PINS}))
    return venv_python(venv)


def run_peer(
    docs: Path, edited: Path, model_dir: Path, *, overlap: int = CHUNK_OVERLAP, threads: int | None = None
) -> dict:
    """Run the worker in the peer's virtualenv on two JSONL files (first ingest, then the edited set)."""
    python = ensure_venv()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": "",  # nothing of kup's tree or venv on the peer's path
    }
    command = [str(python), __file__, "--worker", "--docs", str(docs), "--edited", str(edited)]
    command += ["--model", str(model_dir), "--overlap", str(overlap)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"peer: the LlamaIndex run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the worker: runs inside the peer's virtualenv ------------------------------------------------------


def _documents(path: Path):
    from llama_index.core import Document

    docs = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            docs.append(
                Document(
                    text=row["text"],
                    id_=row["id"],
                    metadata={"title": row["title"], "url": row["url"], "published": row["published"]},
                    excluded_embed_metadata_keys=["url", "published"],  # the title goes with each chunk, as kup's
                    excluded_llm_metadata_keys=["url", "published"],
                )
            )
    return docs


def worker(args: argparse.Namespace) -> dict:
    import tempfile

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    t0 = time.perf_counter()
    embed = HuggingFaceEmbedding(model_name=str(args.model), device="cpu", embed_batch_size=EMBED_BATCH)
    embed.get_text_embedding("warm up the model")
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="kup-peer-") as tmp:
        client = QdrantClient(path=str(Path(tmp) / "qdrant"))
        store = QdrantVectorStore(client=client, collection_name="peer")
        pipeline = IngestionPipeline(
            transformations=[
                SentenceSplitter(
                    chunk_size=CHUNK_TOKENS,
                    chunk_overlap=args.overlap,
                    tokenizer=lambda text: tokenizer.encode(text, add_special_tokens=False),
                ),
                embed,
            ],
            vector_store=store,
            docstore=SimpleDocumentStore(),
            docstore_strategy=DocstoreStrategy.UPSERTS,
        )
        first_docs = _documents(args.docs)
        t1 = time.perf_counter()
        first_nodes = pipeline.run(documents=first_docs)
        t2 = time.perf_counter()
        second_docs = _documents(args.edited)
        t3 = time.perf_counter()
        second_nodes = pipeline.run(documents=second_docs)
        t4 = time.perf_counter()
        points = client.count("peer").count
        client.close()
    first_s, second_s = t2 - t1, t4 - t3
    return {
        "system": "llamaindex",
        "versions": _versions(),
        "chunking": {"chunk_tokens": CHUNK_TOKENS, "overlap": args.overlap, "splitter": "SentenceSplitter"},
        "embed_batch": EMBED_BATCH,
        "torch_threads": torch.get_num_threads(),
        "model_load_s": round(load_s, 2),
        "documents": len(first_docs),
        "first_ingest_s": round(first_s, 2),
        "first_docs_per_s": round(len(first_docs) / first_s, 3),
        "chunks_embedded": len(first_nodes),
        "reingest_s": round(second_s, 2),
        "chunks_reembedded": len(second_nodes),
        "points_after": points,
    }


def _versions() -> dict:
    from importlib.metadata import version

    names = ["llama-index-core", "llama-index-embeddings-huggingface", "llama-index-vector-stores-qdrant"]
    return {n: version(n) for n in [*names, "qdrant-client", "sentence-transformers", "torch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, required=True, help="JSONL: id, title, url, published, text")
    parser.add_argument("--edited", type=Path, required=True, help="the same documents, some edited")
    parser.add_argument("--model", type=Path, required=True, help="sentence-transformers model directory")
    parser.add_argument("--overlap", type=int, default=CHUNK_OVERLAP, help="SentenceSplitter chunk_overlap (tokens)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
    else:
        print(json.dumps(run_peer(args.docs, args.edited, args.model, overlap=args.overlap, threads=args.threads)))


if __name__ == "__main__":
    main()
