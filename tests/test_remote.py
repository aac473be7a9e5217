"""The remote backend (issue #9): unit tests of the HTTP client's pure parts against tiny fake
servers, and end to end through the real LSP server over stdio against a real engine,
llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), with the tiny StarCoder
GGUF and with Qwen2.5-Coder-0.5B.

llama-cpp-python's server has no `/infill`, so the llama-server flavour is checked against a fake
llama-server here (request bodies and streamed answers as llama.cpp documents them).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lsprotocol import types

from lsp_server.engine.base import DecodeGuard, FimInput
from lsp_server.engine.generate import Cancelled
from lsp_server.engine.remote import (
    LLAMA_SERVER,
    OPENAI,
    Limits,
    RemoteClient,
    RemoteEngine,
    RemoteError,
    api_root,
    backoff_delays,
    cut_at_stop,
    fim_strings,
    join_url,
    neutralize,
    parse_sse,
)
from lsp_server.engine.worker import CancelFlag
from lsp_server.models.catalog import load_catalog
from lsp_server.prompt.fim import build_prompt, prompt_text
from tests.conftest import lsp_session
from tests.ports import free_port
from tests.test_lsp_qwen import FIB

KEY_ENV = "STARCODER_TEST_ENGINE_KEY"
KEY = "sk-test-5ecret-never-logged"
URI = "file:///tmp/starcoder-test/remote.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


def family(name: str) -> Any:
    return load_catalog().families[name]


# --- pure parts ---------------------------------------------------------------------------------------
def test_urls_for_each_flavour() -> None:
    assert api_root("http://gpu:8000/v1/", OPENAI) == "http://gpu:8000/v1"
    assert api_root("gpu:8000", OPENAI) == "http://gpu:8000/v1"  # bare host: the /v1 base
    assert api_root("https://lb.example/llm/v1", LLAMA_SERVER) == "https://lb.example/llm"
    assert join_url("http://gpu:8000/v1", "completions") == "http://gpu:8000/v1/completions"
    assert join_url("http://gpu:8080", "/infill") == "http://gpu:8080/infill"
    with pytest.raises(RemoteError, match="http"):
        api_root("ftp://gpu", OPENAI)


def test_sse_parsing() -> None:
    stream = [b": ping\r\n", b"\r\n", b"event: message\n", b'data: {"a": 1}\n', b"\n",
              b"data: line1\n", b"data: line2\n", b"\n", b'data:{"b":2}\n', b"\n",
              b"data: [DONE]\n", b"\n", b'data: {"after": "done"}\n', b"\n"]
    assert list(parse_sse(stream)) == ['{"a": 1}', "line1\nline2", '{"b":2}']
    assert list(parse_sse([b'{"content": "x"}\n'])) == ['{"content": "x"}']  # JSON lines
    assert list(parse_sse([b'data: {"tail": 1}\n'])) == ['{"tail": 1}']  # no final blank line


def test_backoff_is_exponential_capped_and_jittered() -> None:
    low = backoff_delays(5, base=0.25, cap=2.0, rand=lambda: 0.0)
    high = backoff_delays(5, base=0.25, cap=2.0, rand=lambda: 1.0)
    assert low == [0.125, 0.25, 0.5, 1.0, 1.0]
    assert high == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert backoff_delays(0) == []


def test_stop_strings_and_marker_neutralizing() -> None:
    assert cut_at_stop("x = 1<|endoftext|>junk", ["<fim_prefix>", "<|endoftext|>"]) == ("x = 1", True)
    assert cut_at_stop("x = 1", ["<|endoftext|>"]) == ("x = 1", False)
    out = neutralize("s = '<fim_middle>'", ["<fim_middle>"])
    assert "<fim_middle>" not in out and out.replace("\u200b", "") == "s = '<fim_middle>'"


def test_text_prompt_has_the_families_marker_strings() -> None:
    """The openai flavour sends the same FIM layout as text: marker strings, user text as is
    (with any marker in it broken, so it cannot inject a control token)."""
    fam = family("qwen2.5-coder")
    client = RemoteClient(OPENAI, "http://127.0.0.1:9/v1", None)
    model = RemoteEngine(client, fam, 1024)
    p = build_prompt("def f(x):\n    ret", "\n# <|fim_middle|>\n", fim_strings(fam), model.tokenize)
    text = prompt_text(p)
    assert text.startswith("<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n# <")
    assert text.endswith("<|fim_middle|>") and text.count("<|fim_middle|>") == 1
    assert p.heal == "ret"  # healed like the local prompt: the model must regenerate "ret"
    assert model.measure(p.ids) < len(text)  # markers count one token each


# --- fake engines -------------------------------------------------------------------------------------
@dataclass
class Seen:
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)


Handler = Callable[["FakeHandler", str, Any], None]


class FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited bodies: streaming without chunked encoding
    server: FakeServer

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        self.server.seen.requests.append((self.command, self.path, dict(self.headers), body))
        self.server.handler(self, self.path, body)

    do_GET = do_POST = _handle

    def json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def sse(self, events: list[Any], delay: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for ev in events:
                self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
                self.wfile.flush()
                time.sleep(delay)
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:
            self.server.seen.closed.set()


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", free_port()), FakeHandler)
        self.handler = handler
        self.seen = Seen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


S = TypeVar("S", bound=socketserver.BaseServer)


@contextlib.contextmanager
def serving(srv: S) -> Iterator[S]:
    """Run a socketserver in a thread for the duration of the block."""
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def fake_engine(handler: Handler) -> contextlib.AbstractContextManager[FakeServer]:
    return serving(FakeServer(handler))


def no_sleep(seconds: float, cancel: threading.Event | None) -> None:
    pass


def test_retries_with_backoff_then_success() -> None:
    calls = []

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        calls.append(path)
        if len(calls) < 3:
            h.json(503, {"error": {"message": "Loading model"}})
        else:
            h.sse([{"choices": [{"text": "ok", "finish_reason": None}]},
                   {"choices": [{"text": "", "finish_reason": "stop"}]}])

    with fake_engine(handler) as srv:
        client = RemoteClient(OPENAI, srv.url + "/v1", None, Limits(retries=2), sleep=no_sleep)
        model = RemoteEngine(client, family("starcoder"), 1024)
        gen = asyncio.run(model.generate_text(["p"], max_tokens=4, stops=(),
                                              cancel=threading.Event(), on_text=None,
                                              should_stop=lambda t: False))
        assert gen.text == "ok" and calls == ["/v1/completions"] * 3
        calls.clear()
        client.limits.retries = 1  # two 503s, one retry: the error names the URL and the reason
        with pytest.raises(RemoteError, match=r"/v1/completions answered HTTP 503.*Loading model"):
            asyncio.run(model.generate_text(["p"], max_tokens=4, stops=(),
                                            cancel=threading.Event(), on_text=None,
                                            should_stop=lambda t: False))


def test_down_engine_is_a_clear_error_without_hanging() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = RemoteClient(OPENAI, f"http://127.0.0.1:{port}/v1", None, sleep=no_sleep)
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match=rf"127\.0\.0\.1:{port}/v1/models.*connection refused"):
        RemoteEngine(client, family("starcoder"), 1024).probe()
    assert time.monotonic() - t0 < 2


def test_slow_engine_times_out_with_a_clear_error() -> None:
    def handler(h: FakeHandler, path: str, body: Any) -> None:
        if path.endswith("/stall"):  # headers and one event, then silence
            h.send_response(200)
            h.end_headers()
            h.wfile.write(b'data: {"content": "x"}\n\n')
            h.wfile.flush()
        time.sleep(2)

    with fake_engine(handler) as srv:
        client = RemoteClient(LLAMA_SERVER, srv.url, None,
                              Limits(read_timeout_s=0.3, retries=0), sleep=no_sleep)
        t0 = time.monotonic()
        with pytest.raises(RemoteError, match=r"no answer from .*/completion within 0.3 s"):
            list(client.stream("/completion", {}, CancelFlag()))
        with pytest.raises(RemoteError, match=r"/stall stopped sending for 0.3 s"):
            list(client.stream("/stall", {}, CancelFlag()))
        assert time.monotonic() - t0 < 1.5


def test_api_key_is_sent_but_never_logged(monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        h.json(401, {"error": {"message": "Invalid API key"}})

    with fake_engine(handler) as srv:
        client = RemoteClient(OPENAI, srv.url + "/v1", KEY_ENV, sleep=no_sleep)
        with pytest.raises(RemoteError, match=KEY_ENV):  # unset: says which variable
            client.get_json("models")
        monkeypatch.setenv(KEY_ENV, KEY)
        with pytest.raises(RemoteError) as err:
            client.get_json("models")
        assert srv.seen.requests[-1][2]["Authorization"] == f"Bearer {KEY}"
        assert "401" in str(err.value) and KEY not in str(err.value)
        assert KEY not in repr(client) and KEY not in caplog.text


def test_llama_server_infill_request_and_stream() -> None:
    """/infill gets our window's prefix and suffix, the other files as input_extra, prompt
    caching and a slot; its `content` events stream, and `stop` ends them."""

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        h.sse([{"content": "return", "stop": False}, {"content": " a * b", "stop": False},
               {"content": "\n", "stop": False}, {"content": "", "stop": True, "stop_type": "eos"}])

    with fake_engine(handler) as srv:
        client = RemoteClient(LLAMA_SERVER, srv.url + "/v1", None)  # a copied /v1 is dropped
        model = RemoteEngine(client, family("starcoder2"), 4096)
        gen = model.complete(
            FimInput(["unused"], "def mul(a, b):\n    ret", "\n", [("util.py", "X = 1\n")]),
            slot="main", max_tokens=16, temperature=0.0,
            guard=DecodeGuard("ret", lambda t: False), cancel=CancelFlag())
    method, path, _, body = srv.seen.requests[-1]
    assert (method, path) == ("POST", "/infill")
    assert body["input_prefix"] == "def mul(a, b):\n    ret" and body["input_suffix"] == "\n"
    assert body["input_extra"] == [{"filename": "util.py", "text": "X = 1\n"}]
    assert body["cache_prompt"] is True and body["id_slot"] == -1 and body["stream"] is True
    assert body["n_predict"] == 16 and "<|endoftext|>" in body["stop"]
    assert gen.text == "retreturn a * b\n" and gen.stop_reason == "eos"  # heal prepended


def test_llama_server_without_infill_uses_completion_with_our_prompt() -> None:
    def handler(h: FakeHandler, path: str, body: Any) -> None:
        if path == "/infill":
            h.json(501, {"error": {"message": "infill is not supported by this model"}})
        else:
            h.sse([{"content": "urn x", "stop": False}, {"content": "", "stop": True}])

    with fake_engine(handler) as srv:
        client = RemoteClient(LLAMA_SERVER, srv.url, None)
        model = RemoteEngine(client, family("starcoder"), 4096)
        kw: dict[str, Any] = {"slot": "main", "max_tokens": 8, "temperature": 0.0,
                              "guard": DecodeGuard("ret", lambda t: False), "cancel": CancelFlag()}
        prompt = FimInput(["<fim_prefix>", "ret", "<fim_suffix>", "<fim_middle>"], "", "")
        gen = model.complete(prompt, **kw)
        assert gen.text == "urn x"
        gen = model.complete(prompt, **kw)
    paths = [r[1] for r in srv.seen.requests]
    assert paths == ["/infill", "/completion", "/completion"]  # /infill is not asked again
    assert srv.seen.requests[-1][3]["prompt"] == "<fim_prefix>ret<fim_suffix><fim_middle>"


def test_budgets_without_the_vocabulary() -> None:
    """No GGUF here: the engine's tokenizer calibrates chars/token once; without one, the
    documented estimate (which over-counts code)."""

    def with_tokenize(h: FakeHandler, path: str, body: Any) -> None:
        if path == "/tokenize":
            h.json(200, {"tokens": list(range(len(body["content"]) // 4))})
        else:
            h.json(404, {"detail": "Not Found"})

    with fake_engine(with_tokenize) as srv:
        model = RemoteEngine(RemoteClient(LLAMA_SERVER, srv.url, None), family("starcoder"), 1024)
        model.calibrate()
        assert model.counting == "server tokenizer"
        assert model.chars_per_token == pytest.approx(4 * 0.9, rel=0.05)
        assert model.count("x" * 360) == pytest.approx(100, abs=3)
    with fake_engine(lambda h, path, body: h.json(404, {})) as srv:
        model = RemoteEngine(RemoteClient(OPENAI, srv.url, None), family("starcoder"), 1024)
        model.calibrate()
        assert model.counting == "estimate" and model.count("x" * 30) == 10


def test_cancel_closes_the_stream_at_once() -> None:
    """A cancel flag set from another thread shuts the socket down while the reader is blocked:
    the engine sees the disconnect (its next write fails)."""

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        h.sse([{"choices": [{"text": "x", "finish_reason": None}]}] * 400, delay=0.05)

    with fake_engine(handler) as srv:
        client = RemoteClient(OPENAI, srv.url, None)
        cancel = CancelFlag()
        got: list[str] = []
        events = client.stream("completions", {"prompt": "p", "stream": True}, cancel)
        threading.Timer(0.3, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            for ev in events:
                got.append(ev["choices"][0]["text"])
        assert time.monotonic() - t0 < 1.5
        assert 0 < len(got) < 50
        assert srv.seen.closed.wait(5), "the engine never saw the connection close"


def test_cancel_while_waiting_for_the_first_token() -> None:
    """llama-server sends its headers only with the first token: a cancel while the engine still
    reads the prompt must not wait for them."""

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        time.sleep(3)  # "prompt evaluation"
        h.sse([{"content": "late", "stop": True}])

    with fake_engine(handler) as srv:
        model = RemoteEngine(RemoteClient(LLAMA_SERVER, srv.url, None), family("starcoder"), 1024)
        cancel = CancelFlag()
        threading.Timer(0.3, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            asyncio.run(model.generate_text(["p"], max_tokens=4, stops=(), cancel=cancel,
                                            on_text=None, should_stop=lambda t: False))
        assert time.monotonic() - t0 < 1.5


def test_should_stop_closes_the_stream_early() -> None:
    """Post-processing's stop rule ends the stream (and the engine's generation) at once."""

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        h.sse([{"choices": [{"text": "a\n", "finish_reason": None}]}] * 200, delay=0.02)

    with fake_engine(handler) as srv:
        model = RemoteEngine(RemoteClient(OPENAI, srv.url, None), family("starcoder"), 1024)
        gen = model.complete(FimInput(["p"], "", ""), slot="main", max_tokens=200,
                             temperature=0.0, guard=DecodeGuard(should_stop=lambda t: t.count("\n") >= 2),
                             cancel=CancelFlag())
        assert gen.text == "a\na\n" and gen.stop_reason == "stop"
        assert srv.seen.closed.wait(5)


# --- a real engine: llama-cpp-python's OpenAI-compatible server ------------------------------------
class Engine:
    """`python -m llama_cpp.server` on 127.0.0.1, one thread, small context, log kept in a file."""

    def __init__(self, model: Path, log_dir: Path, port: int | None = None,
                 api_key: str | None = None) -> None:
        self.model, self.port, self.api_key = model, port or free_port(), api_key
        self.log_path = log_dir / f"engine-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 180.0) -> None:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", "1",
               "--n_threads_batch", "1", "--n_ctx", "2048", "--interrupt_requests", "false"]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"engine exited: {self.log()[-2000:]}")
            req = urllib.request.Request(f"{self.url}/models", headers=(
                {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}))
            with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"engine not up in {timeout}s: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running(engine: Engine) -> Iterator[Engine]:
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def tiny_engine(tiny_starcoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running(Engine(tiny_starcoder, tmp_path_factory.mktemp("engine"), api_key=KEY)) as e:
        yield e


@pytest.fixture(scope="module")
def qwen_engine(qwen_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running(Engine(qwen_gguf, tmp_path_factory.mktemp("engine"))) as e:
        yield e


def remote_options(model: Path, endpoint: str, **more: Any) -> dict[str, Any]:
    return {"model": str(model), "backend": "openai", "endpoint": endpoint, "maxTokens": 8,
            "contextTokens": 1024, **more}


def completions_served(engine: Engine) -> int:
    return engine.log().count('"POST /v1/completions HTTP/1.1" 200')


async def test_completion_through_the_lsp_from_the_engine(preset: str, tiny_starcoder: Path,
                                                          tiny_engine: Engine,
                                                          tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    before = completions_served(tiny_engine)
    async with lsp_session(preset, remote_options(tiny_starcoder, tiny_engine.url,
                                                  apiKeyEnv=KEY_ENV),
                           env={KEY_ENV: KEY}, args=("--log-file", str(log_file))) as s:
        ready = await s.wait_status("ready", "error")
        assert ready["state"] == "ready", ready
        assert tiny_engine.url in ready["message"] and "vocabulary" in ready["message"]
        s.open(URI, TEXT)
        for line, char in ((1, 11), (5, 4)):
            items = await s.inline(URI, line, char)
            for item in items:  # the tiny model's text is noise; the protocol shape is not
                assert item.range == types.Range(types.Position(line, char),
                                                 types.Position(line, char))
        assert completions_served(tiny_engine) >= before + 2  # generated on the engine
    text = log_file.read_text()
    # -v: every request logged, with the engine it ran on ...
    assert any("completion (main window" in ln and tiny_engine.url in ln for ln in text.splitlines())
    assert KEY not in text  # ... and the key never


async def test_catalogue_model_without_local_file_counts_with_the_engine(
        tiny_engine: Engine) -> None:
    """`model` = a catalogue name whose GGUF is not here: the family comes from models.toml, the
    budgets from the engine's tokenizer (llama-cpp-python: /extras/tokenize)."""
    async with lsp_session("neovim", {"model": "starcoderbase-1b", "backend": "openai",
                                      "endpoint": tiny_engine.url, "apiKeyEnv": KEY_ENV,
                                      "maxTokens": 8, "contextTokens": 1024},
                           env={KEY_ENV: KEY}) as s:
        ready = await s.wait_status("ready", "error")
        assert ready["state"] == "ready", ready
        assert "starcoderbase-1b (starcoder)" in ready["message"]
        assert "server tokenizer" in ready["message"]
        before = completions_served(tiny_engine)
        s.open(URI, TEXT)
        await s.inline(URI, 5, 4)
        assert completions_served(tiny_engine) == before + 1


async def test_explain_over_the_remote_engine(tiny_starcoder: Path, tiny_engine: Engine) -> None:
    async with lsp_session("visual-studio-code",
                           remote_options(tiny_starcoder, tiny_engine.url, apiKeyEnv=KEY_ENV),
                           env={KEY_ENV: KEY}) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, TEXT)
        before = completions_served(tiny_engine)
        result = await asyncio.wait_for(s.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="starcoder.explain", arguments=[
                URI, {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}])),
            timeout=120)
        assert isinstance(result, str)
        assert "not ready" not in result
        assert completions_served(tiny_engine) == before + 1


async def test_engine_down_gives_error_status_and_recovers(preset: str, tiny_starcoder: Path,
                                                          tmp_path: Path) -> None:
    await _check_down_and_back(preset, tiny_starcoder, tmp_path)


@pytest.mark.real_model
async def test_qwen_engine_down_and_back(qwen_gguf: Path, tmp_path: Path) -> None:
    await _check_down_and_back("neovim", qwen_gguf, tmp_path)


async def _check_down_and_back(preset: str, gguf: Path, tmp_path: Path) -> None:
    engine = Engine(gguf, tmp_path)
    with running(engine):
        async with lsp_session(preset, remote_options(gguf, engine.url)) as s:
            assert (await s.wait_status("ready", "error"))["state"] == "ready"
            s.open(URI, TEXT)
            await s.inline(URI, 5, 4)
            engine.stop()  # the engine dies
            n = len(s.statuses)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            assert await s.inline(URI, 1, 11) == []  # answers, with no items, at once
            assert loop.time() - t0 < 5
            err = await s.wait_status("error", after=n, timeout=10)
            assert f"127.0.0.1:{engine.port}" in err["message"], err
            assert "refused" in err["message"], err
            assert await s.inline(URI, 5, 4) == []  # still up, still answering
            n = len(s.statuses)
            engine.start()  # back on the same port: the server notices by itself
            back = await s.wait_status("ready", after=n, timeout=30)
            assert engine.url in back["message"]
            served = completions_served(engine)
            s.open(URI + "2", TEXT)
            await asyncio.wait_for(s.inline(URI + "2", 1, 11), 120)
            assert completions_served(engine) == served + 1


async def test_llama_server_flavour_through_the_lsp(tiny_starcoder: Path) -> None:
    """The whole pipeline with `backend = llama-server` against a fake llama-server: health probe,
    `/infill` with our window, its stream post-processed into the suggestion."""

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        if path == "/health":
            h.json(200, {"status": "ok"})
        elif path == "/infill":
            h.sse([{"content": "return a", "stop": False}, {"content": " * b\n", "stop": False},
                   {"content": "\n\ndef div(a, b):\n", "stop": False},
                   {"content": "", "stop": True, "stop_type": "limit"}])
        else:
            h.json(404, {"error": {"message": "File Not Found"}})

    with fake_engine(handler) as srv:
        async with lsp_session("neovim", {"model": str(tiny_starcoder), "backend": "llama-server",
                                          "endpoint": srv.url, "maxTokens": 32}) as s:
            ready = await s.wait_status("ready", "error")
            assert ready["state"] == "ready", ready
            s.open(URI, TEXT)
            items = await s.inline(URI, 5, 4)
            assert [i.insert_text for i in items] == ["return a * b"]  # same post-processing
    infill = [r for r in srv.seen.requests if r[1] == "/infill"]
    assert len(infill) == 1
    body = infill[0][3]
    assert body["input_prefix"] == TEXT[: TEXT.rindex("\n", 0, -1) + 1] + "    "
    assert body["input_suffix"] == "\n" and body["cache_prompt"] is True
    assert body["n_predict"] == 32 and body["stream"] is True


# --- Qwen2.5-Coder 0.5B behind the engine -----------------------------------------------------------
@pytest.mark.real_model
async def test_qwen_completion_makes_sense_over_the_engine(qwen_gguf: Path,
                                                          qwen_engine: Engine) -> None:
    async with lsp_session("neovim", remote_options(qwen_gguf, qwen_engine.url, maxTokens=48)) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, FIB)
        res = await asyncio.wait_for(s.inline_whole(URI, 4, 4), timeout=180)
        text = res.text
        assert "fibonacci(n - 1)" in text.replace("n-1", "n - 1"), text
        assert "print(" not in text  # same post-processing: stopped at the end of the scope


class Proxy(socketserver.ThreadingTCPServer):
    """A TCP relay in front of the engine that records when the *client* closed each connection
    and what the engine had sent by then: evidence on the wire that a stream was closed."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.conns: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", free_port()), _Relay)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def completions(self) -> list[dict[str, Any]]:
        return [c for c in self.conns if c["request"].startswith(b"POST /v1/completions")]


class _Relay(socketserver.BaseRequestHandler):
    server: Proxy

    def handle(self) -> None:
        client: socket.socket = self.request
        up = socket.create_connection(("127.0.0.1", self.server.upstream_port))
        rec: dict[str, Any] = {"request": b"", "down": b"", "client_closed": None,
                               "engine_closed": None}
        self.server.conns.append(rec)

        def downstream() -> None:
            with contextlib.suppress(OSError):
                while data := up.recv(65536):
                    rec["down"] += data
                    client.sendall(data)
            rec["engine_closed"] = rec["engine_closed"] or time.monotonic()
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=downstream, daemon=True)
        t.start()
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                rec["request"] += data
                up.sendall(data)
        if rec["engine_closed"] is None:
            rec["client_closed"] = time.monotonic()  # the client hung up first
        with contextlib.suppress(OSError):
            up.shutdown(socket.SHUT_RDWR)
        t.join(10)
        up.close()


def proxy_to(engine: Engine) -> contextlib.AbstractContextManager[Proxy]:
    return serving(Proxy(engine.port))


async def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _long_file() -> str:
    """~700 prompt tokens: the 1-thread engine needs seconds to read it, so a cancel sent soon
    after the request arrives lands before any text exists (nothing else could close the stream)."""
    body = "".join(f"def helper_{i}(values, factor={i}):\n    total = 0\n    for v in values:\n"
                   f"        total += v * factor - {i}\n    return total\n\n\n" for i in range(24))
    return body + "def main():\n    \n"


# Qwen: its 1-thread prompt evaluation takes seconds, so the cancel lands before any text. The tiny
# model evaluates at once, but llama-cpp-python's server holds its noise back (not valid UTF-8)
# while it generates, so no text arrives either; it then also looks at the connection only when it
# has text to send, so its own disconnect log is checked with Qwen only (it gets its own engine).
CANCEL_CASES = [pytest.param("tiny", 400, id="tiny-starcoder"),
                pytest.param("qwen", 256, id="qwen", marks=pytest.mark.real_model)]


@pytest.mark.parametrize(("which", "max_tokens"), CANCEL_CASES)
async def test_cancelled_and_superseded_requests_close_their_streams(
        which: str, max_tokens: int, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        if which == "tiny":
            gguf: Path = request.getfixturevalue("tiny_starcoder")
            engine = stack.enter_context(running(Engine(gguf, tmp_path, api_key=KEY)))
        else:
            gguf, engine = request.getfixturevalue("qwen_gguf"), request.getfixturevalue(
                "qwen_engine")
        await _check_cancel_and_supersede(which, gguf, engine, max_tokens)


async def _check_cancel_and_supersede(which: str, gguf: Path, engine: Engine,
                                      max_tokens: int) -> None:
    text = _long_file()
    last = text.count("\n") - 1
    options = remote_options(gguf, "", maxTokens=max_tokens, contextTokens=2048,
                             apiKeyEnv=KEY_ENV)
    with proxy_to(engine) as proxy:
        async with lsp_session("visual-studio-code", {**options, "endpoint": proxy.url},
                               env={KEY_ENV: KEY}) as s:
            assert (await s.wait_status("ready", "error"))["state"] == "ready"
            s.open(URI, text)
            engine_log_at = len(engine.log())
            # 1. $/cancelRequest: the stream must close at once, before any text arrived.

            def at(line: int, character: int) -> types.InlineCompletionParams:
                return types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(URI),
                    position=types.Position(line, character),
                    context=types.InlineCompletionContext(
                        types.InlineCompletionTriggerKind.Automatic))

            fut = asyncio.ensure_future(s.client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, at(last, 4), msg_id="cancel-me"))
            await _wait(lambda: len(proxy.completions()) == 1, 60, "the completion request")
            await asyncio.sleep(0.3)
            cancelled_at = time.monotonic()
            s.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(fut, timeout=10)
            first = proxy.completions()[0]
            await _wait(lambda: first["client_closed"] is not None or first["engine_closed"]
                        is not None, 5, "the stream to close")
            assert first["client_closed"] is not None, "the engine finished first: nothing tested"
            assert first["client_closed"] >= cancelled_at, "closed before the cancel: nothing tested"
            assert first["client_closed"] - cancelled_at < 1.0
            print(f"{which}: $/cancelRequest -> stream closed in "
                  f"{(first['client_closed'] - cancelled_at) * 1000:.0f} ms")
            if which == "qwen":  # still reading the prompt: nothing but the cancel could close it
                assert b'"text": "' not in first["down"].replace(b'"text": ""', b""), \
                    "text had arrived: the close may not have been the cancel's doing"
            if which == "qwen":  # the engine saw the disconnect (llama-cpp-python logs it)
                await _wait(lambda: "Disconnected from client" in engine.log()[engine_log_at:],
                            60, "the engine to log the disconnect")
            # 2. Latest wins: a newer request closes the older one's stream.
            older = asyncio.ensure_future(s.inline(URI, last, 4))
            await _wait(lambda: len(proxy.completions()) == 2, 60, "the second request")
            await asyncio.sleep(0.3)
            newer = asyncio.ensure_future(s.client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, at(2, 8), msg_id="newer"))
            await _wait(lambda: len(proxy.completions()) == 3, 60, "the third request")
            second = proxy.completions()[1]
            await _wait(lambda: second["client_closed"] is not None, 2,
                        "the superseded stream to close")
            assert await asyncio.wait_for(older, 30) == []  # it answers, with nothing
            # 3. The newest is cancelled too: no stream stays open behind the editor's back.
            s.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="newer"))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(newer, 30)
            third = proxy.completions()[2]
            await _wait(lambda: third["client_closed"] is not None
                        or third["engine_closed"] is not None, 5, "the last stream to close")


# --- bounds on what an engine may send (issue 15) -----------------------------------------------------
def test_an_engine_cannot_fill_our_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from lsp_server import defaults

    monkeypatch.setattr(defaults, "REMOTE_MAX_JSON_BYTES", 1000)
    monkeypatch.setattr(defaults, "REMOTE_MAX_LINE_BYTES", 500)
    monkeypatch.setattr(defaults, "REMOTE_MAX_STREAM_BYTES", 5000)
    monkeypatch.setattr(defaults, "REMOTE_MAX_STREAM_EVENTS", 50)
    monkeypatch.setattr(defaults, "REMOTE_MAX_TEXT_CHARS", 300)

    def handler(h: FakeHandler, path: str, body: Any) -> None:
        if path.endswith("/models"):
            h.json(200, {"data": [{"id": "x" * 2000}]})
        elif path.endswith("/longline"):
            h.send_response(200)
            h.end_headers()
            h.wfile.write(b"data: " + b"x" * 10_000)  # never a newline
        elif path.endswith("/endless"):
            h.sse([{"choices": [{"text": "", "finish_reason": None}]}] * 400)  # empty, forever
        elif path.endswith("/huge"):
            h.sse([{"choices": [{"text": "y" * 100, "finish_reason": None}]}] * 40)
        else:
            h.sse([{"choices": [{"text": "z" * 90, "finish_reason": None}]}] * 20)

    with fake_engine(handler) as srv:
        client = RemoteClient(OPENAI, srv.url + "/v1", None, Limits(retries=0), sleep=no_sleep)
        with pytest.raises(RemoteError, match="answered more than 1000 bytes"):
            client.get_json("models")
        with pytest.raises(RemoteError, match="past the size limits"):
            list(client.stream("longline", {}, CancelFlag()))
        with pytest.raises(RemoteError, match="streamed past the limits"):
            list(client.stream("endless", {}, CancelFlag()))
        with pytest.raises(RemoteError, match="past the size limits"):
            list(client.stream("huge", {}, CancelFlag()))
        model = RemoteEngine(client, family("starcoder"), 1024)
        gen = model.stream_text("text", {}, CancelFlag(), stops=())
        assert len(gen.text) == 300 and gen.stop_reason == "max_tokens"
