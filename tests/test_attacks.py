"""The attacker's suite (issue 15), on loopback: a web page, a cloned repository's settings and a
secrets file open in the editor try to drive the server, read secrets or send them away.

Each test runs the real server (a subprocess, the tiny StarCoder GGUF) and, where something could
leak, a listener the attacker controls that must never see a connection, or a fake engine whose
received prompts are checked on the wire.
"""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import time
from pathlib import Path
from typing import Any

import pytest

from lsp_server import defaults
from lsp_server.engine.remote import OPENAI, RemoteClient
from testkit.rawrpc import RawServer, encode
from tests.netclient import Listening, StreamClient, WsClient, raw_exchange
from tests.ports import free_port
from tests.test_remote import serving

SECRET_VALUE = "sk-live-4f7e1c0ffee5ecret"
ENV = {"AWS_SECRET_ACCESS_KEY": SECRET_VALUE, "STARCODER_TEST_STOLEN": SECRET_VALUE}


# --- the attacker's listener --------------------------------------------------------------------------
class Recorder(socketserver.ThreadingTCPServer):
    """A loopback listener whose handler records what each connection sent in `received`: the
    attacker's trap, or a fake engine."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[socketserver.BaseRequestHandler]) -> None:
        self.received: list[bytes] = []
        super().__init__(("127.0.0.1", free_port()), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _TrapHandler(socketserver.BaseRequestHandler):
    """Accepts anything and records its first bytes (an attacker's 'engine')."""

    def handle(self) -> None:
        self.request.settimeout(2)
        data = b""
        with contextlib.suppress(OSError):
            data = self.request.recv(65536)
        self.server.received.append(data)  # type: ignore[attr-defined]


def trap() -> contextlib.AbstractContextManager[Recorder]:
    return serving(Recorder(_TrapHandler))


def _post(body: dict[str, Any], host: str) -> bytes:
    """What `fetch("http://127.0.0.1:PORT/", {method: "POST", mode: "no-cors", body})` sends."""
    data = json.dumps(body).encode()
    return (b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: keep-alive\r\n"
            b"Content-Type: text/plain;charset=UTF-8\r\nOrigin: https://evil.example\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data) + data)


def _drive(endpoint: str, api_key_env: str = "STARCODER_TEST_STOLEN") -> list[dict[str, Any]]:
    """The issue's three messages: initialize, initialized, and settings naming the attacker."""
    return [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"processId": None, "rootUri": None, "capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {
            "starcoder": {"backend": "openai", "endpoint": endpoint, "apiKeyEnv": api_key_env}}}},
    ]


def _nothing_reached(t: Recorder, seconds: float = 5.0) -> None:
    time.sleep(seconds)  # remote connects happen at once when they happen (3 s connect timeout)
    assert t.received == [], t.received


# --- transports ----------------------------------------------------------------------------------------
def test_http_post_probe_gets_nothing_done(tiny_starcoder: Path, tmp_path: Path) -> None:
    with trap() as t, Listening("tcp", tiny_starcoder, tmp_path, env=ENV) as srv:
        host = f"127.0.0.1:{srv.port}"
        probe = b"".join(_post(m, host) for m in _drive(t.url))
        assert raw_exchange(srv.port, probe) == b""  # closed at once, not a byte answered
        # The same with an LSP header smuggled into the body: the request line decides.
        assert raw_exchange(srv.port, _post(_drive(t.url)[0], host) + encode(_drive(t.url)[0])) == b""
        _nothing_reached(t)
        assert "does not speak LSP" in srv.log() and SECRET_VALUE not in srv.log()
        # The listener is not harmed: its real client gets a working session.
        c = StreamClient(("127.0.0.1", srv.port))
        assert "result" in c.initialize({"token": srv.token})
        c.close()
    with trap() as t, Listening("ws", tiny_starcoder, tmp_path, env=ENV) as srv:
        probe = b"".join(_post(m, f"127.0.0.1:{srv.port}") for m in _drive(t.url))
        assert not raw_exchange(srv.port, probe).startswith(b"HTTP/1.1 101")
        _nothing_reached(t)


def test_websocket_from_a_foreign_origin_is_refused(tiny_starcoder: Path, tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus

    with trap() as t, Listening("ws", tiny_starcoder, tmp_path, env=ENV) as srv:
        for origin in ("https://evil.example", "http://localhost:8000", "null"):
            with pytest.raises(InvalidStatus) as refused:
                WsClient(srv.port, origin=origin)
            assert refused.value.response.status_code == 403
        assert "is not allowed" in srv.log()
        _nothing_reached(t, 1.0)


def test_token_less_tcp_client_is_refused(tiny_starcoder: Path, tmp_path: Path) -> None:
    with trap() as t, Listening("tcp", tiny_starcoder, tmp_path, env=ENV) as srv:
        for options in (None, {"token": ""}, {"token": "guess" * 9}):
            c = StreamClient(("127.0.0.1", srv.port))
            first, *rest = _drive(t.url)
            first["params"]["initializationOptions"] = options
            c.send_bytes(b"".join(encode(m) for m in (first, *rest)))
            answer = c.answer(1)
            assert answer["error"]["code"] == -32001 and "token" in answer["error"]["message"]
            assert c.wait_eof() and len(c.messages) == 1
            c.close()
        _nothing_reached(t)


# --- settings that could send secrets away ------------------------------------------------------------
def shown(srv: RawServer) -> list[str]:
    return [n["params"]["message"] for n in srv.notifications
            if n.get("method") == "window/showMessage"]


@pytest.mark.parametrize("name", ["HOME", "AWS_SECRET_ACCESS_KEY"])
def test_api_key_env_naming_another_secret_is_refused(name: str, tiny_starcoder: Path,
                                                      tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with trap() as t:
        srv = RawServer(tiny_starcoder, env=ENV, log_path=log)
        try:
            # From initializationOptions (a Neovim exrc, a Helix languages.toml in the repo)...
            srv.initialize({"backend": "openai", "endpoint": t.url, "apiKeyEnv": name,
                            "maxTokens": 4})
            srv.wait_status("ready")  # the local model: the remote settings were not taken
            # ...and pushed later (workspace settings).
            srv.notify("workspace/didChangeConfiguration", {"settings": {"starcoder": {
                "backend": "openai", "endpoint": t.url, "apiKeyEnv": name}}})
            deadline = time.monotonic() + 30
            while sum(f"(got '{name}')" in m for m in shown(srv)) < 2:
                assert time.monotonic() < deadline, shown(srv)
                time.sleep(0.2)
            message = next(m for m in shown(srv) if f"(got '{name}')" in m)
            assert "starcoder.apiKeyEnv must be the name of an environment variable that starts " \
                   "with STARCODER_" in message
            assert any("remote engine settings (backend, endpoint, apiKeyEnv) were not changed"
                       in m for m in shown(srv))
            _nothing_reached(t)
        finally:
            srv.close()
    assert SECRET_VALUE not in log.read_text()


def test_credentials_in_the_endpoint_are_refused_and_never_shown(tiny_starcoder: Path,
                                                                 tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with trap() as t:
        leaky = t.url.replace("http://", "http://alice:hunter2secret@")
        srv = RawServer(tiny_starcoder, env=ENV, log_path=log)
        try:
            srv.initialize({"backend": "openai", "endpoint": leaky, "maxTokens": 4})
            srv.wait_status("ready")
            deadline = time.monotonic() + 30
            while not any("starcoder.endpoint must not contain a user name" in m
                          for m in shown(srv)):
                assert time.monotonic() < deadline, shown(srv)
                time.sleep(0.2)
            assert not any("hunter2" in m for m in shown(srv))
            _nothing_reached(t, 2.0)
        finally:
            srv.close()
    assert "hunter2" not in log.read_text()


def test_plain_http_to_another_host_gets_no_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARCODER_TEAM_KEY", SECRET_VALUE)
    remote = RemoteClient(OPENAI, "http://192.0.2.10:8000/v1", "STARCODER_TEAM_KEY")
    assert "Authorization" not in remote._headers()
    assert remote.key_withheld and "use an https:// endpoint" in remote.key_withheld
    for ok in ("https://192.0.2.10/v1", "http://127.0.0.1:8000/v1", "http://localhost:1/v1",
               "http://[::1]:8000/v1"):
        assert RemoteClient(OPENAI, ok, "STARCODER_TEAM_KEY")._headers()["Authorization"] == \
            f"Bearer {SECRET_VALUE}", ok
    with pytest.raises(Exception, match="only variables named STARCODER_"):
        RemoteClient(OPENAI, "https://x/v1", "AWS_SECRET_ACCESS_KEY")


# --- secrets files never reach a prompt ---------------------------------------------------------------
HELPER = '''def compute_invoice_total(items, tax_rate):
    """Sum of the line items with tax."""
    subtotal = sum(item.price * item.quantity for item in items)
    return round(subtotal * (1 + tax_rate), 2)
'''
MAIN = "from helper import compute_invoice_total\n\n\ndef invoice_total_for(order):\n    return "
DOTENV = f"INVOICE_API_KEY={SECRET_VALUE}\ncompute_invoice_total_token={SECRET_VALUE}\n"
ID_RSA = f"-----BEGIN OPENSSH PRIVATE KEY-----\ninvoice_total {SECRET_VALUE}\n-----END OPENSSH\n"


class _EngineHandler(socketserver.StreamRequestHandler):
    """A fake OpenAI-compatible engine that records every request it receives."""

    def handle(self) -> None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            ch = self.rfile.read(1)
            if not ch:
                return
            head += ch
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = self.rfile.read(length)
        self.server.received.append(head + body)  # type: ignore[attr-defined]
        if head.startswith(b"GET /v1/models"):
            out = json.dumps({"data": [{"id": "tiny"}]}).encode()
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(out) + out)
        elif head.startswith(b"POST /v1/completions"):
            events = [{"choices": [{"text": "compute_invoice_total(order.items, 0.2)\n",
                                    "finish_reason": None}]},
                      {"choices": [{"text": "", "finish_reason": "stop"}]}]
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                             + b"".join(b"data: " + json.dumps(e).encode() + b"\n\n"
                                        for e in events) + b"data: [DONE]\n\n")
        else:
            self.wfile.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def _open(srv: RawServer, uri: str, text: str, language: str = "python") -> None:
    srv.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": language, "version": 1, "text": text}})


def _inline(srv: RawServer, uri: str, line: int, character: int) -> dict[str, Any]:
    return srv.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
        "context": {"triggerKind": 1}}, timeout=120)


def test_a_dotenv_value_never_appears_in_any_prompt(tiny_starcoder: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    (root / ".gitignore").write_text("local_notes.py\n")
    files = {"helper.py": HELPER, ".env": DOTENV, ".env.production": DOTENV,
             "deploy/id_rsa": ID_RSA, "config/prod.py": f"INVOICE = '{SECRET_VALUE}'\n",
             "local_notes.py": f"compute_invoice_total = '{SECRET_VALUE}'\n"}
    uris = {name: (root / name).as_uri() for name in [*files, "main.py"]}
    with serving(Recorder(_EngineHandler)) as engine:
        _dotenv_session(engine, root, files, uris, tmp_path, tiny_starcoder)
    prompts = [b for b in engine.received if b.startswith(b"POST /v1/completions")]
    assert len(prompts) >= 1
    wire = b"\n".join(engine.received)
    assert SECRET_VALUE.encode() not in wire  # on the wire: never
    assert b"BEGIN OPENSSH" not in wire and b"INVOICE_API_KEY" not in wire
    assert b"subtotal * (1 + tax_rate)" in prompts[0]  # ordinary cross-file context still works
    assert SECRET_VALUE not in (tmp_path / "server.log").read_text()


def _dotenv_session(engine: Recorder, root: Path, files: dict[str, str], uris: dict[str, str],
                    tmp_path: Path, model: Path) -> None:
    srv = RawServer(env=ENV, log_path=tmp_path / "server.log")
    try:
        srv.call("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {
            "textDocument": {"inlineCompletion": {}}}, "initializationOptions": {
            "model": str(model), "backend": "openai",
            "endpoint": f"http://127.0.0.1:{engine.server_address[1]}/v1",
            "maxTokens": 16, "contextTokens": 2048, "exclude": ["config/"], "gitignore": True}})
        srv.notify("initialized", {})
        srv.wait_status("ready")
        for name, text in files.items():
            _open(srv, uris[name], text, "dotenv" if name.startswith(".env") else "python")
        _open(srv, uris["main.py"], MAIN)
        assert "result" in _inline(srv, uris["main.py"], 4, 11)
        assert any(b.startswith(b"POST /v1/completions") for b in engine.received)  # it was asked
        # Inside the secrets files themselves: nothing, and the engine is not even asked.
        asked = len(engine.received)
        for name in (".env", "deploy/id_rsa", "config/prod.py", "local_notes.py"):
            assert _inline(srv, uris[name], 0, 5)["result"] == {"items": []}, name
            rng = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
            actions = srv.call("textDocument/codeAction", {"textDocument": {"uri": uris[name]},
                               "range": rng, "context": {"diagnostics": []}})
            assert actions["result"] == [], name
            explained = srv.call("workspace/executeCommand", {
                "command": "starcoder.explain", "arguments": [uris[name], rng]})
            assert "completions are off" in explained["error"]["message"], explained
        assert len(engine.received) == asked
        # The status says completions are off for each of them, and why.
        off = {n["params"]["uri"]: n["params"] for n in srv.notifications
               if n.get("method") == "starcoder/documentStatus"}
        assert set(off) == {uris[n] for n in files if n != "helper.py"}, off
        assert all(p["completions"] == "off" for p in off.values())
        assert "matches .env*" in off[uris[".env"]]["reason"]
        assert "starcoder.exclude" in off[uris["config/prod.py"]]["reason"]
        assert ".gitignore" in off[uris["local_notes.py"]]["reason"]
        assert any("completions are off for .env" in m for m in shown(srv))
        # Closing and reopening does not smuggle the text in either (recent documents).
        srv.notify("textDocument/didClose", {"textDocument": {"uri": uris[".env"]}})
        srv.notify("textDocument/didChange", {"textDocument": {"uri": uris[".env.production"],
                   "version": 2}, "contentChanges": [{"text": DOTENV + "MORE=1\n"}]})
        srv.notify("textDocument/didChange", {"textDocument": {"uri": uris["main.py"],
                   "version": 2}, "contentChanges": [{"text": MAIN + "compute"}]})
        assert "result" in _inline(srv, uris["main.py"], 4, 18)
    finally:
        srv.close()


# --- paths and sizes that could hang or exhaust the server ----------------------------------------------
def test_models_file_that_is_a_fifo_or_dev_zero_does_not_hang(tiny_starcoder: Path,
                                                              tmp_path: Path) -> None:
    fifo = tmp_path / "models.toml"
    os.mkfifo(fifo)
    config = tmp_path / "config" / "starcoder-lsp"
    config.mkdir(parents=True)
    os.mkfifo(config / "settings.toml")  # the user settings file too
    for models_file in (str(fifo), "/dev/zero"):
        srv = RawServer(tiny_starcoder, env={"XDG_CONFIG_HOME": str(tmp_path / "config")})
        try:
            t0 = time.monotonic()
            srv.initialize({"modelsFile": models_file})
            status = srv.wait_status("error", timeout=60)
            assert "not a regular file" in status["message"], status
            assert time.monotonic() - t0 < 30
            assert "result" in srv.call("starcoder/stats", None, timeout=10)
        finally:
            srv.close()


@pytest.mark.timeout(1200)
def test_hostile_documents_stay_within_the_memory_bound(tiny_starcoder: Path) -> None:
    """1,500 hostile messages — 95,000-line documents (ASCII and 4-byte characters; under the line
    limit after their edits), completions,
    code actions, explanations and edits on them: peak RSS stays within the stated bound (the
    issue measured 782 MB; before the fix this load passed 4 GB)."""
    srv = RawServer(tiny_starcoder)
    try:
        srv.initialize({"maxTokens": 4})
        srv.wait_status("ready")
        _open(srv, "file:///mem/warm.py", MAIN)
        _inline(srv, "file:///mem/warm.py", 4, 11)
        base = srv.rss_mb()
        sent, ids, n = 0, [], 0
        while sent < 1500:
            n += 1
            uri = f"file:///mem/doc{n}.py"
            line = "x = 1  # pad\n" if n % 3 else "y = '\U0001f600'\n"
            _open(srv, uri, line * 95_000)
            sent += 1
            rng = {"start": {"line": 0, "character": 0}, "end": {"line": 94_999, "character": 0}}
            for k in range(9):
                if k == 4:
                    srv.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                               "contentChanges": [{"range": {"start": {"line": 5, "character": 0},
                                                             "end": {"line": 5, "character": 0}},
                                                   "text": "z = 2\n"}]})
                elif k == 6:
                    ids.append(srv.request("textDocument/codeAction", {
                        "textDocument": {"uri": uri}, "range": rng,
                        "context": {"diagnostics": []}}))
                elif k == 8 and n <= 3:  # whole-file explanations (each runs the model ~400 tokens)
                    ids.append(srv.request("workspace/executeCommand", {
                        "command": "starcoder.explain", "arguments": [uri, rng]}))
                else:
                    ids.append(srv.request("textDocument/inlineCompletion", {
                        "textDocument": {"uri": uri},
                        "position": {"line": 50_000 + k, "character": 3},
                        "context": {"triggerKind": 2}}))
                sent += 1
        srv.wait(ids, 900)
        peak = srv.peak_rss_mb()
        print(f"{sent} messages, {n} documents: RSS {base:.0f} MB before, peak {peak:.0f} MB "
              f"(+{peak - base:.0f} MB), now {srv.rss_mb():.0f} MB")
        assert srv.alive() and not srv.violations
        assert peak - base <= DOCUMENT_RSS_BOUND_MB, f"peak RSS grew {peak - base:.0f} MB"
        assert any("already take" in m for m in shown(srv))  # the budget was reached and said so
    finally:
        srv.close()


# What documents and everything derived from them may add to the server's RSS (README "Security"):
# open documents + recently closed ones + the cross-file index, plus one message in flight
# (a 24 MB message is parsed from bytes into a dict: ~4 copies of it, transiently).
DOCUMENT_RSS_BOUND_MB = (defaults.MAX_DOCUMENT_MEMORY_BYTES + defaults.RECENT_DOCS_MAX_BYTES
                         + defaults.SNIPPET_INDEX_MAX_BYTES + 4 * defaults.MAX_MESSAGE_BYTES) / 2**20

