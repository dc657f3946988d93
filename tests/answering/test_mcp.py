"""`kup mcp`: the official MCP SDK's own client against a real `kup mcp` process, over stdio and streamable HTTP.

The data directory is the fast CLI tests' (three indexed articles, a sources file naming ``news``); the reader is the
tiny model, answering in 8 tokens. Over HTTP the server stands behind `kup api`'s guards: key, host, the SDK's own
Origin check set to the same hosts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from answering.requests import MAX_K, MAX_SEARCH_LIMIT
from fixtures.kup_up import free_port
from tests.cli import test_cli_fast
from tests.cli.test_cli_fast import ARTICLES, ROOT, environment

data_dir = test_cli_fast.data_dir  # the fixture: three indexed articles and a sources file naming `news`

KEY = "kup-mcp-test-key-4f1c"
TIMEOUT = 300  # seconds a call may take: the first search loads the encoder, the first ask the model


def _env(data: Path, model: Path, **extra: str) -> dict[str, str]:
    return environment(data, KUP_BASE_MODEL=str(model), KUP_MAX_NEW_TOKENS="8", **extra)


def _text(result) -> str:
    assert len(result.content) == 1 and result.content[0].type == "text"
    return result.content[0].text


def _one_sentence(result) -> str:
    """A tool error's text, checked to be one line and no traceback."""
    assert result.is_error
    text = _text(result)
    assert "\n" not in text and "Traceback" not in text and len(text) < 300, text
    return text


@pytest.mark.slow
def test_the_tools_over_stdio(data_dir, tiny_model_dir, tmp_path) -> None:
    env = _env(data_dir, tiny_model_dir, KUP_API_GENERATE_WAITING="1")  # one answer generating, one waiting
    params = StdioServerParameters(command=sys.executable, args=["-m", "cli.main", "mcp"], env=env, cwd=str(ROOT))
    stray: list[object] = []  # anything on stdout that is not a protocol message reaches the client as an exception

    async def note(message) -> None:
        if isinstance(message, Exception):
            stray.append(message)

    async def session() -> None:
        with (tmp_path / "stderr.txt").open("w") as errlog:
            transport = stdio_client(params, errlog=errlog)
            async with Client(transport, read_timeout_seconds=TIMEOUT, message_handler=note) as client:
                await _use_the_tools(client)

    anyio.run(session)
    assert stray == []
    log = (tmp_path / "stderr.txt").read_text()
    assert "kup MCP tools (search, ask, status) on stdio" in log and "Traceback" not in log


async def _use_the_tools(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(tools) == ["ask", "search", "status"]
    search, ask = tools["search"].input_schema, tools["ask"].input_schema
    assert search["required"] == ["query"] and set(search["properties"]) == {"query", "k", "sources", "recent_days"}
    assert search["properties"]["k"]["maximum"] == MAX_SEARCH_LIMIT
    assert ask["required"] == ["question"] and ask["properties"]["k"]["maximum"] == MAX_K
    assert ask["properties"]["mode"]["enum"] == ["prompt", "rag-token", "closed-book"]
    assert tools["status"].input_schema.get("properties") == {}
    assert tools["ask"].output_schema and "citations" in tools["ask"].output_schema["properties"]
    assert all(tool.annotations.read_only_hint for tool in tools.values())

    found = await client.call_tool("search", {"query": "When did the harbour reopen?", "k": 3})
    assert not found.is_error, _text(found)
    hits = found.structured_content["hits"]
    assert hits[0]["title"] == "Harbour reopens" and hits[0]["source"] == "news"
    assert {h["title"] for h in hits} == {title for title, _ in ARTICLES}
    assert set(hits[0]) == {"title", "url", "published", "source", "score", "text"}
    assert "storm destroyed its northern pier" in hits[0]["text"] and hits[0]["published"].startswith("2026-11-01")
    text = _text(found)
    assert "[1] Harbour reopens (news, 2026-11-01)" in text and "https://news.example.com/0" in text
    assert "> The Veltmark harbour reopened" in text  # passage text quoted: data, not a header or an instruction
    urls = {h["url"] for h in hits}

    # Four questions at once while the first loads the model: one generates, one waits, the others are told to retry.
    burst: list = []

    async def ask_one() -> None:
        burst.append(await client.call_tool("ask", {"question": "Who won the Veltmark election?", "k": 1}))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(ask_one)
    refused = [r for r in burst if r.is_error]
    assert len(burst) == 4 and 1 <= len(refused) <= 2, [_text(r) for r in burst]
    assert {_one_sentence(r) for r in refused} == {"too many questions are being answered or waiting; retry shortly"}

    answered = await client.call_tool("ask", {"question": "When did the harbour reopen?", "k": 3})
    assert not answered.is_error, _text(answered)
    answer = answered.structured_content
    assert answer["question"] == "When did the harbour reopen?" and answer["mode"] == "prompt"
    assert answer["citations"], answer  # the answer names the passage it came from
    assert {c["url"] for c in answer["citations"]} <= urls
    text = _text(answered)
    assert text.startswith(answer["text"]) and "\n\nSources:\n[" in text
    for c in answer["citations"]:
        assert f"[{c['number']}] [{c['title']}]({c['url']})" in text

    status = await client.call_tool("status", {})
    assert not status.is_error, _text(status)
    [news] = status.structured_content["sources"]
    assert news["source"] == "news" and news["by_status"] == {"indexed": 3}
    assert status.structured_content["health"]["headline"] and _text(status).startswith("kup: ")

    empty = await client.call_tool("ask", {"question": ""})
    assert _one_sentence(empty) == "question: must not be empty"
    blank = await client.call_tool("ask", {"question": "   "})
    assert _one_sentence(blank) == "the question is empty; ask something"
    too_many = await client.call_tool("ask", {"question": "When did the harbour reopen?", "k": 99})
    assert _one_sentence(too_many) == f"k: Input should be less than or equal to {MAX_K}"
    unknown = await client.call_tool("search", {"query": "harbour", "sources": ["gazette"]})
    assert _one_sentence(unknown) == "unknown source 'gazette'; known sources: news"  # a domain error (InputError)
    naive = await client.call_tool("ask", {"question": "harbour?", "as_of": "2026-11-02T00:00:00"})
    assert _one_sentence(naive) == "as_of: Input should have timezone info"


@pytest.fixture
def mcp_url(data_dir, tiny_model_dir):
    """A real `kup mcp --transport http` on a free port, with a key and one extra host name allowed."""
    port = free_port()
    env = _env(data_dir, tiny_model_dir, KUP_API_KEY=KEY, KUP_API_ALLOWED_HOSTS="kup.internal")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "mcp", "--transport", "http", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            httpx.get(url, timeout=1)  # any answer (401 without the key) means it listens
            break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("kup mcp did not answer within 120 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


async def _search_over_http(url: str, headers: dict[str, str], statuses: list[int]):
    """Connect with the SDK's streamable-HTTP client sending ``headers`` and search; each HTTP status is noted."""

    async def noted(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    timeout = httpx2.Timeout(30, read=TIMEOUT)
    hooks = {"response": [noted]}
    http = httpx2.AsyncClient(headers=headers, timeout=timeout, event_hooks=hooks, trust_env=False)
    async with http, Client(streamable_http_client(url, http_client=http), read_timeout_seconds=TIMEOUT) as client:
        return await client.call_tool("search", {"query": "Who won the Veltmark election?", "k": 1})


@pytest.mark.slow
def test_streamable_http_behind_the_api_guards(mcp_url) -> None:
    port = mcp_url.split(":")[2].split("/")[0]

    def search(headers: dict[str, str]) -> tuple[object, list[int]]:
        statuses: list[int] = []
        try:
            return anyio.run(_search_over_http, mcp_url, headers, statuses), statuses
        except Exception as exc:  # the SDK's client raises its MCPError inside its task groups' exception groups
            return exc, statuses

    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY, "Host": f"kup.internal:{port}"}):
        result, statuses = search(headers)
        assert not isinstance(result, Exception), (result, statuses)
        assert not result.is_error and result.structured_content["hits"][0]["title"] == "Brask elected"
        assert set(statuses) <= {200, 202}, statuses

    refused = {
        "no key": ({}, 401),
        "a wrong key": ({"Authorization": "Bearer not-the-key"}, 401),
        "a host not served": ({"X-API-Key": KEY, "Host": "evil.example"}, 400),
        "a page from elsewhere": ({"X-API-Key": KEY, "Origin": "http://evil.example"}, 403),  # the SDK's own check
    }
    for why, (headers, status) in refused.items():
        result, statuses = search(headers)
        assert any(isinstance(e, MCPError) for e in _leaves(result)), (why, result)
        assert statuses and set(statuses) == {status}, (why, statuses)  # every request refused, none served


def _leaves(exc: object) -> list[object]:
    return [leaf for e in exc.exceptions for leaf in _leaves(e)] if isinstance(exc, BaseExceptionGroup) else [exc]
