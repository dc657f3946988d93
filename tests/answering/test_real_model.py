"""With the real packaged models (the default reader Qwen2.5-Coder-0.5B in int8, and SmolLM2-135M): after
ingesting an article about a made-up event, `kup ask` answers with its key fact and cites its URL, while the
closed-book model does not know it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from cli.main import app
from fixtures import Item, article_html, rss

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "restore_environ")]

# A fixed moment, not "two hours ago": the date is in the prompt, and SmolLM2-135M's reply to it changes with the
# date (right for 1 of 5 dates tried on 2026-12-07, the day the suite first failed on it). Fixed,
# the test checks the pipeline with a real model deterministically; bench/qa.py measures how often readers are right.
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
ARTICLE = [
    "The town of Veltmark opened a cable car across the Ryne estuary on Saturday.",
    "The cable car replaced the old ferry, which had run for ninety years.",
    "The crossing takes four minutes, and each cabin holds twelve passengers and two bicycles.",
    "A single ticket costs three crowns, the same price as the old ferry.",
]


@pytest.mark.parametrize("reader", ["qwen2.5-coder-0.5b", "smollm2"])
def test_ask_answers_from_the_article_and_cites_it(pipeline, monkeypatch, tmp_path_factory, reader) -> None:
    cache = tmp_path_factory.getbasetemp() / "model-cache"
    monkeypatch.setenv("KUP_MAX_NEW_TOKENS", "48")
    server = pipeline.server
    server.set("/news/cable-car", article_html("Veltmark opens a cable car over the Ryne", ARTICLE))
    server.set(
        "/news",
        rss(
            [
                Item(
                    "Veltmark opens a cable car over the Ryne",
                    link=server.url("/news/cable-car"),
                    guid="cable-car",
                    published=PUBLISHED,
                )
            ]
        ),
        content_type="application/rss+xml",
    )
    pipeline.write_sources({"veltmark": "/news"})
    runner = CliRunner()
    assert runner.invoke(app, ["refresh"]).exit_code == 0

    # The packaged model, de-quantized once into a shared cache directory, as the reader.
    from training.base_model import resolve_base

    _, model_dir = resolve_base(reader, cache)
    monkeypatch.setenv("KUP_READER_MODEL", str(model_dir))
    question = "How long does the cable car across the Ryne estuary take to cross?"
    result = runner.invoke(app, ["ask", question, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert "four minutes" in answer["text"].lower() or "4 minutes" in answer["text"].lower(), answer["text"]
    assert server.url("/news/cable-car") in [c["url"] for c in answer["citations"]]
    human = runner.invoke(app, ["ask", question])
    assert "Sources:" in human.output and server.url("/news/cable-car") in human.output

    closed = json.loads(runner.invoke(app, ["ask", question, "--mode", "closed-book", "--json"]).stdout)
    assert "four minutes" not in closed["text"].lower() and closed["citations"] == []
