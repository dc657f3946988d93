"""Retrieval for answers: one slot per article and per story, the recency prior, "latest" questions,
every outlet of a syndicated story on its citation, and bad questions answered without a traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from answering import Answerer, LanguageModel
from answering.citations import attributed, cited
from answering.profile import PREVIOUS, AnswerProfile, arrange
from answering.prompt import NOT_FOUND, Passage
from answering.retrieval import RetrievalPolicy, asks_latest, recency_scores, retrieve
from answering.updates import newest_wins, superseded
from connectors import Document
from errors import InputError
from indexing import Catalog, Chunker, EdgeStore, Hit, Indexer

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
BRIDGE = (
    "The Mill Lane bridge in Wynhallow closed on Monday for repairs to its cracked deck. Engineers from "
    "Corran Works found rust in the steel beams under the road. Drivers are sent through the town centre. "
)
PADDING = "The council said the detour adds about ten minutes to a trip across the river at busy times. "
FERRY = "The Wynhallow ferry now runs every twenty minutes while the Mill Lane bridge is shut for repairs."
CUTS_FIRST = "Valmira Stores will cut 160 jobs at its distribution centre in Rookmere, the company said on Sunday."
CUTS_UPDATE = (
    "Valmira Stores will now cut 215 jobs at its Rookmere distribution centre after losing a large contract. "
    "When the cuts were first announced, the figure given was 160."
)


def _doc(source: str, slug: str, text: str, title: str, published: datetime) -> Document:
    url = f"https://{source}.example/{slug}"
    return Document(source, url, text, title=title, url=url, published_at=published, language="en")


@pytest.fixture
def news(tmp_path, dense, sparse):
    """A long bridge article, a short related one, a story carried verbatim by two outlets, and a job-cut
    figure that a follow-up changed ten days later."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = EdgeStore(tmp_path / "index" / "kup")
    docs = [
        _doc("ledger", "bridge", BRIDGE + PADDING * 40, "Mill Lane bridge shut", T0),
        _doc("courier", "ferry", FERRY, "Ferry runs more often", T0 + timedelta(hours=5)),
        _doc("ledger", "cuts", CUTS_FIRST, "Valmira Stores to cut 160 jobs", T0),
        _doc("lantern", "cuts", CUTS_FIRST, "Rookmere depot cuts", T0 + timedelta(hours=3)),
        _doc("courier", "cuts-update", CUTS_UPDATE, "Valmira Stores now to cut 215 jobs", T0 + timedelta(days=10)),
    ]
    for doc in docs:  # one at a time, as refreshes bring them: the catalog forms stories as it commits
        catalog.upsert_documents([doc])
    Indexer(catalog, store, Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8), dense, sparse).run()
    yield catalog, store
    catalog.close()


def test_an_article_takes_one_slot_so_other_articles_get_theirs(news, dense, sparse) -> None:
    _, store = news
    question = "Why is the Mill Lane bridge in Wynhallow closed?"
    plain = retrieve(store, dense, sparse, question, k=3, policy=RetrievalPolicy.previous())
    assert len({p.url for p in plain}) < 3  # the long article's chunks crowd the plain top-k
    one = RetrievalPolicy(per_document=1, half_life_days=None)
    diverse = retrieve(store, dense, sparse, question, k=3, policy=one)
    assert len({p.doc_id for p in diverse}) == 3
    assert diverse[0].url == "https://ledger.example/bridge"
    assert "https://courier.example/ferry" in [p.url for p in diverse]
    two = retrieve(store, dense, sparse, question, k=4, policy=RetrievalPolicy(per_document=2, half_life_days=None))
    assert [p.url for p in two].count("https://ledger.example/bridge") == 2  # the caller chose two per article


def test_identical_text_under_two_urls_is_one_story_citing_both_outlets(news, dense, sparse) -> None:
    _, store = news
    found = retrieve(store, dense, sparse, "Valmira Stores job cuts Rookmere 160", k=5, policy=RetrievalPolicy())
    copies = [p for p in found if p.url in ("https://ledger.example/cuts", "https://lantern.example/cuts")]
    assert len(copies) == 1  # a story counted once
    assert set(copies[0].story_urls) == {"https://ledger.example/cuts", "https://lantern.example/cuts"}
    assert set(copies[0].story_sources) == {"ledger", "lantern"}


def test_the_newest_value_wins_when_a_story_was_updated(news, dense, sparse) -> None:
    _, store = news
    question = "How many jobs will Valmira Stores cut in Rookmere?"
    found = retrieve(store, dense, sparse, question, k=2, policy=RetrievalPolicy(half_life_days=3.0))
    assert found[0].url == "https://courier.example/cuts-update"
    assert found[0].score >= found[1].score and found[1].score < found[1].relevance  # the older one is discounted
    shown = arrange(found, "oldest-first")
    assert shown[-1].url == "https://courier.example/cuts-update"  # nearest the question, dated
    assert shown[-1].published > shown[0].published


def test_an_update_that_only_changes_the_date_stays_one_passage_with_the_new_date(news, dense, sparse) -> None:
    catalog, store = news
    moved = T0 + timedelta(days=2)
    catalog.upsert_documents([_doc("courier", "ferry", FERRY, "Ferry runs more often", moved)])
    Indexer(catalog, store, Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8), dense, sparse).run()
    found = retrieve(store, dense, sparse, "How often does the Wynhallow ferry run?", k=5, policy=RetrievalPolicy())
    ferries = [p for p in found if p.url == "https://courier.example/ferry"]
    assert len(ferries) == 1 and ferries[0].published == "2026-10-03T09:00:00Z"


def test_latest_questions_get_the_short_half_life() -> None:
    policy = RetrievalPolicy(half_life_days=7.0, latest_half_life_days=2.0)
    assert asks_latest("What is the latest figure?") and asks_latest("Who is the current mayor?")
    assert not asks_latest("Who won the Wynhallow election?")
    assert policy.half_life("How many jobs are going now?") == 2.0
    assert policy.half_life("How many jobs are going?") == 7.0
    assert RetrievalPolicy().half_life("Who won?") is None  # no prior by default: it cost hit@1 on the hard set
    assert RetrievalPolicy().half_life("Who is the mayor now?") == 7.0
    assert RetrievalPolicy.previous().half_life("Who is the mayor now?") is None


def test_recency_prior_halves_per_half_life_from_the_newest_relevant_hit() -> None:
    hits = [
        Hit("a", 1.0, {"published": "2026-10-11T00:00:00Z"}),
        Hit("b", 1.0, {"published": "2026-10-04T00:00:00Z"}),
        Hit("c", 1.0, {}),  # undated: as old as the oldest dated hit
    ]
    assert recency_scores(hits, 7.0) == pytest.approx([1.0, 0.5, 0.5])
    assert recency_scores(hits, None) == [1.0, 1.0, 1.0]
    # The clock starts at the newest of the top hits: a newer but less relevant hit is not boosted past 1.
    later = [*hits[:1], Hit("d", 0.2, {"published": "2026-10-25T00:00:00Z"})]
    assert recency_scores(later, 7.0, top_relevant=1) == pytest.approx([1.0, 0.2])


def test_passage_order_choices() -> None:
    ps = [
        Passage("b", published="2026-10-02"),
        Passage("c", published="2026-10-03"),
        Passage("a", published="2026-10-01"),
    ]
    assert [p.text for p in arrange(ps, "rank")] == ["b", "c", "a"]
    assert [p.text for p in arrange(ps, "best-last")] == ["a", "c", "b"]
    assert [p.text for p in arrange(ps, "oldest-first")] == ["a", "b", "c"]


@pytest.fixture
def answerer(tmp_path, news, dense, sparse, tiny_model_dir) -> Answerer:
    lm = LanguageModel(tmp_path / "data", str(tiny_model_dir))
    return Answerer(news[1], dense, sparse, lm, context_tokens=512, max_new_tokens=8)


def test_citations_name_every_outlet_of_a_syndicated_story(answerer) -> None:
    answer = answerer.answer("How many jobs did Valmira Stores first plan to cut at Rookmere?", k=3)
    shown = answer.as_dict()["passages"]
    number = next(i for i, p in enumerate(shown, 1) if len(p["story_urls"]) == 2)
    outlets = {"https://ledger.example/cuts", "https://lantern.example/cuts"}
    assert set(shown[number - 1]["story_urls"]) == outlets
    # Whichever copy's text the prompt held, a citation of it names both outlets.
    (citation,) = cited(f"160 jobs [{number}]", answer.passages)
    assert set(citation.urls) == outlets and set(citation.sources) == {"ledger", "lantern"}
    (inferred,) = attributed("Valmira Stores will cut 160 jobs in Rookmere", answer.passages[number - 1 : number])
    assert inferred.inferred and set(inferred.urls) == outlets


@pytest.mark.parametrize(
    "question",
    [
        "bridge",
        "Quand le pont de Mill Lane rouvrira-t-il à la circulation ?",
        "What did the quarterly report of the Andromeda space elevator consortium say about tether costs?",
        ("Tell me about the Mill Lane bridge closure and what the engineers found. " * 27)[:2000],
    ],
    ids=["one-word", "french", "nothing-in-the-index", "2000-chars"],
)
def test_bad_questions_get_an_answer_or_a_clear_message(answerer, question) -> None:
    try:
        answer = answerer.answer(question, k=3)
    except InputError as exc:  # a clear sentence naming what to change
        assert "question" in str(exc) and "\n" not in str(exc)
        return
    assert answer.text and answer.passages
    if question.startswith("What did the quarterly"):
        assert answer.text == NOT_FOUND and answer.citations == []


def test_a_question_beyond_the_search_limit_is_refused_in_one_sentence(answerer) -> None:
    with pytest.raises(InputError, match="characters long"):
        answerer.answer("bridge " * 400)


def test_previous_profile_reproduces_the_plain_top_k(news, dense, sparse, tiny_model_dir, tmp_path) -> None:
    lm = LanguageModel(tmp_path / "data", str(tiny_model_dir))
    old = Answerer(news[1], dense, sparse, lm, context_tokens=512, max_new_tokens=8, profile=PREVIOUS)
    found = old.retrieve("Why is the Mill Lane bridge in Wynhallow closed?", k=3, recent_days=None, sources=None)
    assert len({p.url for p in found}) < 3
    new = Answerer(news[1], dense, sparse, lm, profile=AnswerProfile(), recency_half_life_days=10)
    assert new.profile.retrieval.half_life_days == 10 and AnswerProfile().retrieval.half_life_days is None


def test_an_update_on_the_same_subject_takes_the_place_of_what_it_replaced() -> None:
    first = Passage(CUTS_FIRST, "Valmira Stores to cut 160 jobs", published="2026-10-01T09:00:00Z", source="wire")
    update = Passage(CUTS_UPDATE, "Valmira Stores now to cut 215 jobs", published="2026-10-11T09:00:00Z", source="wire")
    other = Passage(FERRY, "Ferry runs more often", published="2026-10-01T14:00:00Z")
    question = "How many jobs will Valmira Stores cut in Rookmere?"
    assert superseded(question, [first, other, update]) == [True, False, False]
    assert [p.title for p in newest_wins(question, [first, other, update])] == [
        "Ferry runs more often",
        "Valmira Stores now to cut 215 jobs",
        "Valmira Stores to cut 160 jobs",
    ]
    # A newer article without an update's words, or about another subject, replaces nothing.
    plain = Passage(CUTS_FIRST.replace("said on Sunday", "said"), "Cuts", published="2026-10-12T09:00:00Z")
    assert superseded(question, [first, plain]) == [False, False]
    assert superseded("How often does the Wynhallow ferry run?", [other, update]) == [False, False]
    # Another feed's newer passage with an update's words demotes nothing: only the same source or story does.
    hostile = Passage(CUTS_UPDATE, update.title, published="2026-10-20T09:00:00Z", source="spam")
    assert superseded(question, [first, hostile]) == [False, False]
    from answering.retrieval import StoryPassage

    told = StoryPassage(CUTS_FIRST, first.title, published="2026-10-01T09:00:00Z", source="a", story_id="s1")
    retold = StoryPassage(CUTS_UPDATE, update.title, published="2026-10-11T09:00:00Z", source="b", story_id="s1")
    assert superseded(question, [told, retold]) == [True, False]  # a syndicated follow-up of the same story


def test_answering_as_of_a_date_sees_nothing_published_later(news, dense, sparse) -> None:
    _, store = news
    question = "How many jobs will Valmira Stores cut in Rookmere?"
    policy = RetrievalPolicy(half_life_days=7.0)
    before_update = T0 + timedelta(days=2)
    with store.session():
        now = retrieve(store, dense, sparse, question, k=5, policy=policy)
        then = retrieve(store, dense, sparse, question, k=5, policy=policy, as_of=before_update)
    assert any("215" in p.text for p in now)
    assert then and all(p.published <= "2026-10-03" for p in then) and not any("215" in p.text for p in then)
    # The prior's clock is the as-of moment: two days after T0, a passage from T0 weighs 0.5 ** (2 / 7).
    cut = next(p for p in then if "160" in p.text)
    assert cut.score == pytest.approx(cut.relevance * 0.5 ** (2 / 7), rel=0.02)
