"""A tiny Llama-architecture model built from a config (no download), with the SmolLM2 tokenizer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import Document
from indexing import Catalog


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from training.base_model import packaged_gguf

    gguf = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    pretrain(model, tokenizer)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def pretrain(model, tokenizer, steps: int = 150) -> None:
    """A few seconds of full training on English text, so the tiny model is a (weak) language model."""
    import torch

    from training.corpus import python_text

    ids = tokenizer("\n\n".join(python_text(120)), add_special_tokens=False)["input_ids"]
    windows = torch.tensor([ids[i : i + 64] for i in range(0, len(ids) - 64, 64)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        batch = windows[torch.randint(len(windows), (8,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


FACTS = [
    "The Lumen Bridge over the river Osk opened on 3 October 2026 and carries trams and bicycles only.",
    "Mayor Ilse Varga announced that the Osk ferry will stop running once the Lumen Bridge is open.",
    "The new Osk tram line 9 links the harbour to the university in eleven minutes.",
    "Engineers tested the Lumen Bridge with forty loaded trucks before the opening ceremony.",
    "The city council named the bridge after the Lumen lighting festival held every winter.",
    "Tickets for tram line 9 cost the same as the old ferry crossing, two crowns per ride.",
]


def add_documents(catalog: Catalog, texts: list[str], *, when: datetime, source: str = "news") -> list[Document]:
    """Documents straight into the catalog, marked indexed at ``when`` (as a refresh would leave them)."""
    docs = [
        Document(
            source=source,
            external_id=f"{source}-{when:%Y%m%d%H%M}-{i}",
            text=t,
            title=t.split(" ", 4)[-1][:40],
            url=f"https://example.com/{i}",
            published_at=when,
            language="en",
        )
        for i, t in enumerate(texts)
    ]
    catalog.upsert_documents(docs, when)
    claimed = catalog.claim_pending("fixture:1", 10_000, when)
    catalog.mark_indexed("fixture:1", [(d.id, d.version, 1) for d in claimed], when)
    return docs


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield cat
    cat.close()


@pytest.fixture
def first_update(catalog) -> datetime:
    when = datetime.now(UTC) - timedelta(days=40)
    add_documents(catalog, FACTS, when=when)
    return when
