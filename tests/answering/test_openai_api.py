"""kup as a model: the official `openai` client against a real `kup api` app under uvicorn (answering.chat).

The answers come from the tiny model over a real Edge index: what the protocol must carry is exactly what the
answerer says, streamed or whole, with its citations, behind the same key and limits as the other routes.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from answering.api_guards import ApiGuards
from answering.chat import MODELS
from indexing import EdgeStore
from tests.answering.test_api import serving
from tests.cli import test_cli_fast

data_dir = test_cli_fast.data_dir  # fixtures: three indexed articles, and a `kup api` process serving them
api_server = test_cli_fast.api_server

KEY = "k3y-0f-the-chat-route"
QUESTION = "When did the Veltmark harbour reopen?"


@pytest.fixture
def client_and_url(answerer):
    with serving(answerer, ApiGuards(api_key=KEY, max_body_bytes=64_000)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120), url


def test_the_models_are_the_answer_modes(client_and_url) -> None:
    client, _ = client_and_url
    assert [m.id for m in client.models.list()] == ["kup", "kup-rag-token", "kup-closed-book"]
    assert all(m.owned_by == "kup" for m in client.models.list())


def test_a_completion_carries_the_answerers_own_answer_with_its_sources(client_and_url, answerer) -> None:
    client, _ = client_and_url
    expected = answerer.answer(QUESTION)
    reply = client.chat.completions.create(model="kup", messages=[{"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.model == "kup" and reply.choices[0].finish_reason == "stop"
    assert content.startswith(expected.text)  # the same greedy answer, then the Sources list
    extra = reply.model_extra
    assert extra["kup"]["text"] == expected.text and extra["kup"]["mode"] == "prompt"
    assert [c["url"] for c in extra["kup"]["citations"]] == [c.url for c in expected.citations]
    assert extra["citations"] == [c.url for c in expected.citations if c.url]
    for c in expected.citations:  # a client that shows only text still shows where it came from
        assert f"[{c.number}] [{c.title}]({c.url})" in content
    if not expected.citations:
        assert "Sources:" not in content
    assert len(extra["kup"]["passages"]) >= 1 and reply.usage.completion_tokens >= 1


def test_a_streamed_completion_is_the_same_answer_in_pieces(client_and_url) -> None:
    client, _ = client_and_url
    messages = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="kup", messages=messages)
    chunks = list(client.chat.completions.create(model="kup", messages=messages, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content  # the answer, then its Sources list, as one chunk each at least
    assert len(chunks) >= 3 + bool(whole.model_extra["kup"]["citations"])
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["kup"] == {
        **whole.model_extra["kup"],
        "timings": chunks[-1].model_extra["kup"]["timings"],
    }
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)


def test_max_tokens_shortens_the_answer_and_usage_counts_it(client_and_url) -> None:
    client, _ = client_and_url
    messages = [{"role": "user", "content": QUESTION}]
    short = client.chat.completions.create(model="kup-closed-book", messages=messages, max_tokens=3)
    assert 1 <= short.usage.completion_tokens <= 3
    streamed = client.chat.completions.create(
        model="kup-closed-book", messages=messages, max_tokens=3, stream=True, stream_options={"include_usage": True}
    )
    usages = [c.usage for c in streamed if c.usage is not None]
    assert len(usages) == 1 and usages[0].completion_tokens == short.usage.completion_tokens


def test_a_follow_up_finds_what_the_earlier_question_was_about(answerer) -> None:
    question = "And when did that happen?"  # names nothing: the turn before says what it is about
    harbour = answerer.answer(question, k=1, follows="Tell me about the Veltmark harbour and its northern pier.")
    election = answerer.answer(question, k=1, follows="Who won the Veltmark election, Odile Brask?")
    assert [p.title for p in harbour.passages] == ["Harbour reopens"]
    assert [p.title for p in election.passages] == ["Brask elected"]


def test_kups_own_options_travel_in_the_extra_body(client_and_url) -> None:
    client, _ = client_and_url
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="kup", messages=[{"role": "user", "content": QUESTION}], extra_body={"kup": {"k": 99}}
        )
    assert refused.value.body["param"] == "kup.k"
    reply = client.chat.completions.create(
        model="kup",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"kup": {"k": 1, "sources_in_text": False}},
    )
    assert "Sources:" not in reply.choices[0].message.content and len(reply.model_extra["kup"]["passages"]) <= 1


def test_a_wrong_key_and_an_over_long_body_are_refused_in_openais_shape(client_and_url) -> None:
    _, url = client_and_url
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.chat.completions.create(model="kup", messages=[{"role": "user", "content": QUESTION}])
    assert denied.value.status_code == 401 and denied.value.body["type"] == "authentication_error"
    assert "API key" in denied.value.body["message"] and "not-the-key" not in str(denied.value.body)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as too_big:
        client.chat.completions.create(model="kup", messages=[{"role": "user", "content": "x" * 100_000}])
    assert too_big.value.status_code == 413 and "larger than 64000 bytes" in too_big.value.body["message"]


BAD = {
    "no user turn": ({"messages": [{"role": "system", "content": "Be brief."}]}, "messages"),
    "a role the protocol lacks": ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    "a tool turn": ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}]}, "messages.0.role"),
    "a thousand turns": ({"messages": [{"role": "user", "content": "hi"}] * 1000}, "messages"),
    "tool calls": (
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "c1"}]}, {"role": "user", "content": "hi"}]},
        "messages.0.tool_calls",
    ),
    "tools offered": ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    "an image": (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}]},
        "messages.0.content",
    ),
    "n of 2": ({"n": 2}, "n"),
    "a billion tokens": ({"max_tokens": 1_000_000_000}, "max_tokens"),
    "log-probabilities": ({"logprobs": True}, "logprobs"),
    "JSON mode": ({"response_format": {"type": "json_object"}}, "response_format"),
    "an unknown option": ({"kup": {"recent": 3}}, "kup.recent"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_requests_are_400s_naming_the_field_without_echoing_it(client_and_url, case) -> None:
    _, url = client_and_url
    change, param = BAD[case]
    body = {"model": "kup", "messages": [{"role": "user", "content": QUESTION}], **change}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith(param), error
    assert len(reply.content) < 1000  # a sentence, not the request said back


def test_an_unknown_model_is_a_404_that_names_the_models(client_and_url) -> None:
    client, _ = client_and_url
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert all(name in missing.value.body["message"] for name in MODELS)


def test_a_stream_refused_before_any_text_is_an_ordinary_http_error(client_and_url, answerer, tmp_path) -> None:
    client, _ = client_and_url
    answerer.store = EdgeStore(tmp_path / "empty")
    with pytest.raises(openai.InternalServerError) as empty:
        client.chat.completions.create(model="kup", messages=[{"role": "user", "content": QUESTION}], stream=True)
    assert empty.value.status_code == 503 and "kup refresh" in empty.value.body["message"]


def test_the_raw_stream_is_server_sent_events_ending_in_done(client_and_url) -> None:
    _, url = client_and_url
    body = {"model": "kup-closed-book", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with httpx.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers={"X-API-Key": KEY}, timeout=120
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in reply.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])


@pytest.mark.slow
def test_the_openai_client_talks_to_a_running_kup_api_process(api_server) -> None:
    """The same client against `kup api` as a user starts it (a process, its settings from the environment)."""
    client = openai.OpenAI(base_url=f"{api_server}/v1", api_key="no-key-is-set", max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == list(MODELS)
    messages = [{"role": "user", "content": "When did the harbour reopen?"}]
    whole = client.chat.completions.create(model="kup", messages=messages)
    chunks = list(client.chat.completions.create(model="kup", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert whole.model_extra["kup"]["passages"][0]["url"].startswith("https://")
    assert chunks[-1].model_extra["kup"]["text"] == whole.model_extra["kup"]["text"]
