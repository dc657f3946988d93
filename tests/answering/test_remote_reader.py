"""Any OpenAI-compatible server as the reader (answering.remote_reader), against real HTTP servers on localhost:
a second `kup api` serving its chat-completions route, and a small recording server for what kup sends and for
servers that fail (garbage, a stall, a stream without end, a refusal)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from answering import Answerer, LanguageModel
from answering.api_guards import ApiGuards
from answering.prompt import rag_messages
from answering.remote_reader import ApproximateTokenizer, ReaderUnavailable, RemoteReader
from errors import ConfigError, InputError
from flows.runtime import Runtime
from flows.settings import Settings
from tests.answering.test_api import _closed_port, serving

KEY = "k3y-0f-the-reader"
SAID = ["The harbour ", "reopened on ", "14 March [1]."]


class Recording(BaseHTTPRequestHandler):
    """/<behaviour>/v1/chat/completions: ``said`` streams SAID; ``garbage`` a line that is not JSON; ``stall``
    headers, then nothing; ``endless`` one line that never ends; ``refuse`` a 401 in OpenAI's shape."""

    seen: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Recording.seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        behaviour = self.path.split("/")[1]
        if behaviour == "refuse":
            reply = json.dumps({"error": {"message": "Incorrect API key provided", "type": "auth"}}).encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            if behaviour == "said":
                for piece in SAID:
                    chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
            elif behaviour == "garbage":
                self.wfile.write(b"data: <html>not a completion</html>\n\n")
            elif behaviour == "stall":
                self.wfile.flush()
                time.sleep(5)
            elif behaviour == "endless":
                self.wfile.write(b"data: ")
                while True:
                    self.wfile.write(b"x" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    server.daemon_threads = True
    Recording.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def remote_answerer(answerer: Answerer, tmp_path, reader: RemoteReader, *, fallback: bool = False) -> Answerer:
    lm = LanguageModel(tmp_path / "data", answerer.lm.base_model, remote=reader, fallback=fallback)
    return Answerer(answerer.store, answerer.dense, answerer.sparse, lm, context_tokens=512, max_new_tokens=12)


def test_the_stand_in_tokenizer_counts_about_four_characters_a_token_and_decodes_exactly() -> None:
    tok = ApproximateTokenizer()
    text = "Le port de Veltmark a rouvert le 14 mars — 港口重新开放 🚢 after the storm."
    ids = tok(text)["input_ids"]
    assert len(ids) == -(-len(text) // 4) and tok.decode(ids) == text
    assert tok.decode(ids[:3]) == text[:12]  # a cut falls between characters


def test_a_model_server_writes_the_answer_kup_retrieves_and_cites(answerer, tmp_path, recorder) -> None:
    reader = RemoteReader(f"{recorder}/said/v1", "served-model", api_key=KEY, context_tokens=4096)
    answer = remote_answerer(answerer, tmp_path, reader).answer("Tell me about the Veltmark harbour reopening.")
    assert answer.text == "".join(SAID) and answer.adapter is None
    assert answer.citations and answer.citations[0].url == answer.passages[0].url
    [sent] = Recording.seen
    body = sent["body"]
    assert sent["auth"] == f"Bearer {KEY}" and body["model"] == "served-model" and body["stream"] is True
    assert body["max_tokens"] == 12 and body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system" and "passages" in system["content"].lower()
    assert user["role"] == "user" and "Question: Tell me about the Veltmark harbour" in user["content"]
    assert all(f"<passage {i + 1}" in user["content"] for i in range(len(answer.passages)))


def test_a_second_kup_api_is_a_reader_and_its_key_is_checked(answerer, tmp_path) -> None:
    with serving(answerer, ApiGuards(api_key=KEY)) as url:
        reader = RemoteReader(f"{url}/v1", "kup-closed-book", api_key=KEY)
        answer = remote_answerer(answerer, tmp_path, reader).answer("Tell me about the Veltmark harbour reopening.")
        # That server took kup's user message (the passages and the question) as its question, closed-book.
        _, user = rag_messages(ApproximateTokenizer(), answer.question, answer.passages, answerer.profile.style)
        direct = answerer.answer(user["content"], mode="closed-book")
        assert answer.mode == "prompt" and answer.passages and answer.text == direct.text
        wrong = RemoteReader(f"{url}/v1", "kup-closed-book", api_key="not-the-key")
        with pytest.raises(ReaderUnavailable, match=r"answered HTTP 401: a valid API key is required") as refused:
            remote_answerer(answerer, tmp_path, wrong).answer("Tell me about the Veltmark harbour reopening.")
        assert "not-the-key" not in str(refused.value) and "KUP_READER_FALLBACK=true" in str(refused.value)


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        ("garbage", "sent something that is not a chat completion stream"),
        ("stall", "did not answer within 1 s"),
        ("endless", "sent too much for one answer"),
        ("refuse", "answered HTTP 401: Incorrect API key provided"),
    ],
)
def test_a_failing_server_is_one_sentence_within_its_bounds(answerer, tmp_path, recorder, behaviour, said) -> None:
    reader = RemoteReader(f"{recorder}/{behaviour}/v1", "m", timeout=1.0, max_bytes=200_000)
    started = time.monotonic()
    with pytest.raises(ReaderUnavailable, match=said) as failed:
        remote_answerer(answerer, tmp_path, reader).answer("Tell me about the Veltmark harbour reopening.")
    assert time.monotonic() - started < 10 and "\n" not in str(failed.value)
    assert "KUP_READER_URL" in str(failed.value)


def test_a_server_that_is_down_falls_back_only_when_allowed(answerer, tmp_path) -> None:
    down = RemoteReader(f"http://127.0.0.1:{_closed_port()}/v1", "m", timeout=2.0)
    with pytest.raises(ReaderUnavailable, match="could not be reached.*KUP_READER_FALLBACK=true"):
        remote_answerer(answerer, tmp_path, down).answer("Tell me about the Veltmark harbour reopening.")
    answer = remote_answerer(answerer, tmp_path, down, fallback=True).answer(
        "Tell me about the Veltmark harbour reopening."
    )
    local = answerer.answer("Tell me about the Veltmark harbour reopening.")
    assert answer.text == local.text and answer.passages == local.passages  # the model loaded here answered
    assert any("could not be reached" in n and "KUP_READER_FALLBACK" in n for n in answer.notes)


def test_modes_that_need_token_probabilities_say_so(answerer, tmp_path, recorder) -> None:
    reader = RemoteReader(f"{recorder}/said/v1", "m")
    with pytest.raises(InputError, match="rag-token mode mixes the reader's token probabilities.*--mode prompt"):
        remote_answerer(answerer, tmp_path, reader).answer("When did the harbour reopen?", mode="rag-token")
    assert Recording.seen == []  # refused before anything was sent


def test_a_reader_url_needs_the_model_it_serves(tmp_path) -> None:
    s = Settings(data_dir=tmp_path, reader_url="http://127.0.0.1:9/v1", reader_model=None)
    with Runtime(s) as rt, pytest.raises(ConfigError, match="KUP_READER_MODEL"):
        rt.answerer  # noqa: B018 - building it is the check
    named = Settings(data_dir=tmp_path, reader_url="http://127.0.0.1:9/v1", reader_model="qwen7b", reader_key="s3")
    assert named.reader != "qwen7b"  # the model loaded here, as the fallback, is not the server's
    with Runtime(named) as rt:
        remote = rt.answerer.lm.remote
        assert (remote.model, remote.api_key, remote.url) == ("qwen7b", "s3", "http://127.0.0.1:9/v1")
