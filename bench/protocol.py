"""What the OpenAI-compatible route costs: time to first token and tokens/s of the same answers three ways.

- **in process**: ``Answerer.answer`` streaming to a callback, as ``kup ask`` without a server;
- **route**: ``POST /v1/chat/completions`` with ``stream: true`` against a real ``kup api`` (uvicorn on localhost),
  read as a chat client reads it (the same greedy answer, so the same tokens);
- **remote reader**: an answerer whose reader is a second ``kup api`` on localhost (``KUP_READER_URL``): kup
  retrieves and cites, the second server writes (its closed-book model reads kup's message, a few tokens more).

The three run in turn for each question (the order rotates, so a warm cache favours none), on the hard news set's
questions over its indexed corpus. Target: the route costs under 5% more than in process (first token and tokens/s,
each the mean of per-question ratios with its 95% interval). Prints one JSON line.

    .venv/bin/python -m bench.protocol --questions 12 --base-model smollm2
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from bench._common import ROOT, emit
from bench._stats import figure, mean
from bench.qa import indexed
from bench.qa_sets import load_jsonl, qa_set

from answering import Answerer, LanguageModel
from answering.api import create_app
from answering.chat import MODELS, delta_content, sse_events
from answering.remote_reader import RemoteReader
from indexing import Chunker, DenseEncoder, EdgeStore, SparseEncoder

MAX_NEW_TOKENS = 48


def serve_in_thread(app) -> tuple[str, uvicorn.Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def in_process(answerer: Answerer, question: str, mode: str) -> dict:
    started = time.perf_counter()
    pieces: list[float] = []
    answer = answerer.answer(question, mode=mode, on_text=lambda _: pieces.append(time.perf_counter()))
    return _figures(started, pieces[0] if pieces else None, time.perf_counter(), answer.timings, answer.text, pieces)


def through_route(client: httpx.Client, url: str, question: str, mode: str) -> dict:
    model = next(name for name, its in MODELS.items() if its == mode)
    body = {"model": model, "messages": [{"role": "user", "content": question}], "stream": True}
    body["kup"] = {"sources_in_text": False}  # the answer's text alone, as in process
    started = time.perf_counter()
    first = None
    timings: dict = {}
    text = ""
    pieces: list[float] = []
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise SystemExit(f"the route answered {response.status_code}: {response.read()[:500]!r}")
        for event in sse_events(response.iter_bytes(), max_bytes=10_000_000):
            content = delta_content(event)
            if content and first is None:
                first = time.perf_counter()
            if content:
                pieces.append(time.perf_counter())
            if "kup" in event:
                timings = event["kup"]["timings"]
                text = event["kup"]["text"]
    return _figures(started, first, time.perf_counter(), timings, text, pieces)


def _figures(started: float, first: float | None, ended: float, timings: dict, text: str, pieces: list) -> dict:
    """Seen by the caller: the first piece, the whole answer, and tokens/s between them where it came in pieces
    (a factoid answer in prompt mode is checked whole before it is shown: one piece, no rate)."""
    tokens = int(timings.get("generated_tokens", 0))
    generating = pieces[-1] - pieces[0] if len(pieces) >= 3 else 0
    return {
        "first_token_s": (first or ended) - started,
        # what the answerer itself took to its first piece: the rest of first_token_s is the way there and back
        "answerer_first_token_s": timings.get("first_token_ms", 0) / 1000,
        "total_s": ended - started,
        "tokens": tokens,
        "tokens_per_s": (tokens - 1) / generating if tokens > 1 and generating > 0 else None,
        "text": text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--base-model", default="smollm2", help="the reader: a packaged model's name or a directory")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".kup-bench" / "qa")
    parser.add_argument("--model-cache", type=Path, default=ROOT / ".kup-bench")
    parser.add_argument("--no-remote", action="store_true", help="skip the remote-reader runs")
    parser.add_argument("--mode", default="prompt", choices=["prompt", "closed-book"], help="how answers are made")
    args = parser.parse_args()
    qa = qa_set("hard")
    questions = [q["question"] for q in load_jsonl(qa.questions) if not q.get("extra")][: args.questions]
    dense, sparse = DenseEncoder(), SparseEncoder()
    data_dir = indexed(
        qa.corpus, args.cache_dir, dense, sparse, Chunker(dense.tokenize, chunk_tokens=200, overlap_tokens=32)
    )
    store = EdgeStore(data_dir / "index" / "kup")
    lm = LanguageModel(args.model_cache, args.base_model, use_adapter=False, int8=args.int8)
    answerer = Answerer(store, dense, sparse, lm, max_new_tokens=MAX_NEW_TOKENS)
    url, server = serve_in_thread(create_app(answerer))
    mode = args.mode
    client = httpx.Client(timeout=600)  # a chat client keeps its connection, as the remote reader does
    ways = {
        "in_process": lambda q: in_process(answerer, q, mode),
        "route": lambda q: through_route(client, url, q, mode),
    }
    if not args.no_remote:
        remote_lm = LanguageModel(
            args.model_cache, args.base_model, remote=RemoteReader(f"{url}/v1", "kup-closed-book", context_tokens=2048)
        )
        remote = Answerer(store, dense, sparse, remote_lm, max_new_tokens=MAX_NEW_TOKENS)
        ways["remote_reader"] = lambda q: in_process(remote, q, mode)
    # No store.session() here: the server holds the index open (keep_open) and both sides search through it.
    for way in ways.values():  # load the model, warm the caches and each path's first request: none is timed
        way(questions[0])
    runs: dict[str, list[dict]] = {name: [] for name in ways}
    for i, question in enumerate(questions):
        names = list(ways)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            runs[name].append(ways[name](question))
    server.should_exit = True
    same = [a["text"] == b["text"] for a, b in zip(runs["in_process"], runs["route"], strict=True)]
    figures: dict = {"questions": len(questions), "mode": mode, "reader": args.base_model, "same_answers": sum(same)}
    for name, rows in runs.items():
        rates = [r["tokens_per_s"] for r in rows if r["tokens_per_s"]]
        figures[name] = {
            "first_token_s": round(mean([r["first_token_s"] for r in rows]), 3),
            "total_s": round(mean([r["total_s"] for r in rows]), 3),
            "outside_answerer_first_token_ms": round(
                1000 * mean([r["first_token_s"] - r["answerer_first_token_s"] for r in rows]), 1
            ),
            "tokens_per_s": round(mean(rates), 2) if rates else None,
            "tokens": sum(r["tokens"] for r in rows),
        }
    base = runs["in_process"]
    for name in [n for n in runs if n != "in_process"]:
        firsts = [r["first_token_s"] / b["first_token_s"] - 1 for r, b in zip(runs[name], base, strict=True)]
        rates = [
            1 - r["tokens_per_s"] / b["tokens_per_s"]
            for r, b in zip(runs[name], base, strict=True)
            if r["tokens_per_s"] and b["tokens_per_s"]
        ]
        totals = [r["total_s"] / b["total_s"] - 1 for r, b in zip(runs[name], base, strict=True)]
        figures[name]["first_token_overhead"] = figure(firsts)
        figures[name]["total_overhead"] = figure(totals)
        figures[name]["tokens_per_s_loss"] = figure(rates) if rates else None
    route = figures["route"]
    figures["target_met"] = bool(
        route["first_token_overhead"]["ci95"][1] < 0.05
        and (route["tokens_per_s_loss"] is None or route["tokens_per_s_loss"]["ci95"][1] < 0.05)
    )
    emit("protocol", figures)


if __name__ == "__main__":
    main()
