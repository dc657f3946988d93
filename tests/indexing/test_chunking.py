"""Chunking: token limits, overlap, and content-defined boundaries that survive local edits."""

from __future__ import annotations

import pytest

from fixtures import paragraphs
from indexing import Chunker

# A fixed article and where the chunker cuts it, with the default settings and with small chunks.
# A change to the tokenizer, the unit splitting or the boundary hash moves these and re-embeds every document.
ARTICLE = "\n\n".join(
    [
        (
            "The Veltmark harbour reopened on 14 March, seven months after a storm surge destroyed its northern "
            "pier. Engineers rebuilt the pier on deeper piles and raised the quay by half a metre, so that the "
            "next surge of that size should pass beneath the deck."
        ),
        (
            "The first ship to dock was the Morning Gull, a ferry that had waited out the repairs in the Ryne "
            "estuary. Its captain, Halla Brisk, said the crossing took ten minutes longer than before the storm, "
            "because the new channel markers keep boats further from the sandbanks."
        ),
        (
            "Fishermen were the first to feel the difference. The old pier flooded at every spring tide and its "
            "cranes rusted within a season; the new one carries electric cranes on a raised platform, and the "
            "fish market moved back from its temporary tent on the car park."
        ),
        (
            "The city paid for the work with a loan from the regional bank and a levy on cruise passengers, who "
            "had stopped coming while the harbour was closed. The council expects the levy to repay the loan "
            "within nine years if the cruise lines return at their former rate."
        ),
        (
            "Not everyone is pleased. Residents of the old town say the traffic to the ferry terminal now runs "
            "past their doors day and night, and a petition asks for a tunnel under the quay. The mayor, Odile "
            "Brask, said the council would study the idea but that there was no money for it this decade."
        ),
        (
            "The harbour master plans a public day in May, when the pier will be open to walkers and the new "
            "cranes will lift a fishing boat out of the water to show what they can do. Tickets are free, but the"
            " number of visitors on the pier at any time will be limited to five hundred."
        ),
    ]
)
GOLDEN_DEFAULT = [(161, "The Veltmark harbour reopened"), (207, "rusted within a season; the new")]
GOLDEN_SMALL = [
    (51, "The Veltmark harbour reopened"),
    (66, "that size should pass beneath"),
    (60, "boats further from the sandbanks."),
    (60, "its temporary tent on the car park."),
    (71, "cruise lines return at their former"),
    (68, "was no money for it this decade."),
]


@pytest.fixture(scope="module")
def chunker(dense) -> Chunker:
    return Chunker(dense.tokenize, chunk_tokens=200, overlap_tokens=32)


def token_count(dense, text: str) -> int:
    return len(dense.tokenize([text], add_special_tokens=False, verbose=False)["input_ids"][0])


def test_a_fixed_article_is_cut_at_the_pinned_boundaries(dense) -> None:
    for chunker, golden in (
        (Chunker(dense.tokenize), GOLDEN_DEFAULT),
        (Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8), GOLDEN_SMALL),
    ):
        chunks = chunker.chunk(ARTICLE)
        assert [(c.index, c.tokens) for c in chunks] == [(i, tokens) for i, (tokens, _) in enumerate(golden)]
        assert all(c.text.startswith(start) for c, (_, start) in zip(chunks, golden, strict=True))
        assert chunks[-1].text.endswith("limited to five hundred.")


def test_chunks_respect_the_token_budget_and_overlap(chunker: Chunker, dense) -> None:
    text = "\n\n".join(paragraphs(1, count=30, words=70))
    chunks = chunker.chunk(text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert token_count(dense, chunk.text) <= 200 + 32 + 2  # body + overlap (+ joins)
    # Every chunk after the first starts with the end of the previous chunk.
    for previous, current in zip(chunks, chunks[1:], strict=False):
        overlap = current.text.split("\n", 1)[0]
        assert previous.text.endswith(overlap)
        assert 0 < token_count(dense, overlap) <= 32
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_all_text_is_kept(chunker: Chunker) -> None:
    paras = paragraphs(2, count=12, words=50)
    joined = "\n".join(c.text for c in chunker.chunk("\n\n".join(paras)))
    for p in paras:
        assert p in joined


def test_editing_one_paragraph_changes_at_most_two_chunks(chunker: Chunker) -> None:
    paras = paragraphs(3, count=40, words=60)
    before = chunker.chunk("\n\n".join(paras))
    for position in (0, 13, 27, 39):
        edited = list(paras)
        edited[position] = edited[position].replace(" ", " really ", 3)
        after = chunker.chunk("\n\n".join(edited))
        old = {c.hash for c in before}
        assert sum(c.hash not in old for c in after) <= 2, position


def test_inserting_a_paragraph_changes_few_chunks(chunker: Chunker) -> None:
    paras = paragraphs(4, count=40, words=60)
    before = {c.hash for c in chunker.chunk("\n\n".join(paras))}
    inserted = paras[:15] + ["A short new paragraph about the harbour."] + paras[15:]
    after = chunker.chunk("\n\n".join(inserted))
    assert sum(c.hash not in before for c in after) <= 3
    # A fixed-window chunker would have re-embedded everything after the insertion.
    assert len(after) > 10


def test_overlong_sentences_and_edge_cases(chunker: Chunker, dense) -> None:
    assert chunker.chunk("") == []
    assert chunker.chunk("   \n\n  ") == []
    [single] = chunker.chunk("Just one short line.")
    assert single.text == "Just one short line." and single.index == 0
    wall = " ".join(["supercalifragilistic"] * 800)  # one "sentence" far over the budget
    chunks = chunker.chunk(wall)
    assert len(chunks) >= 4
    assert all(token_count(dense, c.text) <= 234 for c in chunks)
    unicode_text = "Ünïcödé façade — 東京で会議が開かれた。 Ελληνικά κείμενα εδώ.\n\n" * 20
    assert chunker.chunk(unicode_text)


def test_invalid_settings_are_refused(dense) -> None:
    with pytest.raises(ValueError):
        Chunker(dense.tokenize, chunk_tokens=8)
    with pytest.raises(ValueError):
        Chunker(dense.tokenize, chunk_tokens=100, overlap_tokens=100)
