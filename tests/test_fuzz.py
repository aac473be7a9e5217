"""Hostile input and storms against the real server over raw stdio (tiny StarCoder, threads=1).

Contract checked throughout: every request with an id gets exactly one answer (a result or a
JSON-RPC error with a proper code), nothing malformed comes back, the process stays alive, memory
stays bounded, and afterwards a normal completion works (and, on the real model, is correct).

The hypothesis part runs a short fixed seed here; `STARCODER_LSP_FUZZ_EXAMPLES=N` runs more, and
`python -m benchmarks.fuzz_long --messages 10000` is the long run with figures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import PositionCodec

from lsp_server import defaults
from lsp_server.protocol.documents import FastPositionCodec
from lsp_server.protocol.rpc import FrameParser
from testkit.hostile import run_fuzz
from testkit.rawrpc import RawServer, encode, frame
from testkit.storms import (
    CHECK_TEXT,
    INIT,
    URI,
    cancel_storm,
    check_answer,
    edit_storm,
    inline,
    insert,
    items,
    open_doc,
)

FUZZ_EXAMPLES_ENV = "STARCODER_LSP_FUZZ_EXAMPLES"
FUZZ_SEED = 20261122
CI_EXAMPLES = 1000


def shown_messages(server: RawServer) -> list[str]:
    return [n["params"]["message"] for n in server.notifications
            if n.get("method") == "window/showMessage"]


# --- units: the framing parser and the fast position codec -------------------------------------
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), min_size=1))
@settings(max_examples=200, deadline=None, database=None)
def test_frame_parser_is_independent_of_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    bodies = [b for b in bodies if b]
    stream = b"".join(frame(b) for b in bodies)
    parser, got, i, k = FrameParser(), [], 0, 0
    while i < len(stream):
        step = cuts[k % len(cuts)]
        got += list(parser.feed(stream[i : i + step]))
        i, k = i + step, k + 1
    assert got == bodies and parser.errors == 0


@pytest.mark.parametrize("encoding", [types.PositionEncodingKind.Utf16,
                                      types.PositionEncodingKind.Utf8,
                                      types.PositionEncodingKind.Utf32])
@given(st.lists(st.text(max_size=30).map(lambda t: t + "\n"), min_size=1, max_size=4),
       st.integers(0, 5), st.integers(0, 40))
@settings(max_examples=300, deadline=None, database=None)
def test_fast_codec_matches_pygls(encoding: types.PositionEncodingKind, lines: list[str],
                                  line: int, character: int) -> None:
    fast, slow = FastPositionCodec(encoding), PositionCodec(encoding)
    got = fast.position_from_client_units(lines, types.Position(line, character))
    want = slow.position_from_client_units(lines, types.Position(line, character))
    assert (got.line, got.character) == (want.line, want.character)


async def test_notifications_leave_nothing_behind() -> None:
    """In-process: pygls 2.1.1 kept a future per notification forever (~1.8 KB per keystroke)."""
    import asyncio

    from lsp_server.protocol.server import create_server
    from lsp_server.settings import Settings

    proto = create_server(Settings(enable=False)).protocol

    def feed(method: str, params: dict[str, Any], msg_id: int | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if msg_id is not None:
            msg["id"] = msg_id
        proto.handle_body(json.dumps(msg).encode())

    feed("initialize", {"capabilities": {}, "initializationOptions": {"enable": False}}, 1)
    uri = "file:///leak/a.py"
    feed("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                   "version": 1, "text": "x = 1\n"}})
    for i in range(500):
        feed("textDocument/didChange", {"textDocument": {"uri": uri, "version": i + 2},
                                        "contentChanges": [{"text": f"x = {i}\n"}]})
    feed("workspace/didChangeConfiguration", {"settings": {}})  # an async handler
    feed("textDocument/didClose", {"textDocument": {"uri": uri}})
    await asyncio.sleep(0.2)
    assert len(proto._request_futures) <= 2, len(proto._request_futures)


def test_document_limits_per_file_and_in_total(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the per-document and total (memory) limits, their messages, and re-admission."""
    from pygls.workspace import Workspace

    from lsp_server.protocol.documents import document_memory
    from lsp_server.protocol.server import create_server
    from lsp_server.settings import Settings

    mem = document_memory
    monkeypatch.setattr(defaults, "MAX_DOCUMENT_BYTES", 800)
    monkeypatch.setattr(defaults, "MAX_DOCUMENT_MEMORY_BYTES", mem("a" * 500) + mem("b" * 400) + 100)
    proto = create_server(Settings()).protocol
    told: list[str] = []
    proto.on_too_large = told.append
    proto._workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)

    def did_open(name: str, text: str) -> None:
        list(proto.lsp_text_document__did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(f"file:///{name}", "python", 1, text))))

    def did_change(name: str, change: Any) -> None:
        list(proto.lsp_text_document__did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=f"file:///{name}"), [change])))

    did_open("a.py", "a" * 500)
    did_open("b.py", "b" * 400)
    assert proto.kept_total == mem("a" * 500) + mem("b" * 400)
    did_open("c.py", "c" * 200)  # past the memory limit
    assert proto.open_document("file:///c.py") is None and "already take" in told[-1]
    did_open("d.py", "d" * 900)  # over the per-file limit
    assert proto.open_document("file:///d.py") is None and "d.py is larger than" in told[-1]
    here = types.Position(0, 0)
    did_change("a.py", types.TextDocumentContentChangePartial(types.Range(here, here), "x" * 150))
    assert proto.open_document("file:///a.py") is None and "a.py is not kept" in told[-1]
    assert proto.kept_total == mem("b" * 400) and len(told) == 3
    did_change("a.py", types.TextDocumentContentChangePartial(types.Range(here, here), "y"))
    assert len(told) == 3  # told once per document
    list(proto.lsp_text_document__did_close(types.DidCloseTextDocumentParams(
        types.TextDocumentIdentifier("file:///b.py"))))
    did_change("a.py", types.TextDocumentContentChangeWholeDocument("z" * 300))  # fits again
    doc = proto.open_document("file:///a.py")
    assert doc is not None and doc.source == "z" * 300 and proto.kept_total == mem("z" * 300)
    # Memory, not characters: 300 emoji take four times the memory of 300 ASCII letters.
    assert mem("😀" * 300) > 3 * mem("z" * 300) - 100


def test_incremental_edits_are_spliced_exactly_as_pygls_applies_them() -> None:
    """The line-index splice gives pygls' own result for every edit, out-of-range and reversed
    ranges and astral characters (UTF-16 positions) included."""
    import random

    from pygls.workspace import TextDocument

    from lsp_server.protocol.documents import FastPositionCodec
    from lsp_server.protocol.server import create_server
    from lsp_server.settings import Settings

    proto = create_server(Settings()).protocol
    rng = random.Random(11)
    alphabet = ["a", "bc", "😀", "é", "\n", "\r\n", "\r", "\u2028", " "]
    codec = FastPositionCodec(types.PositionEncodingKind.Utf16)
    for trial in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        ours = TextDocument(f"file:///splice{trial % 7}.py", text, position_codec=codec)
        ref = TextDocument("file:///ref.py", text, position_codec=codec)
        for _ in range(3):
            pos = [types.Position(rng.randint(0, 6), rng.randint(0, 7)) for _ in range(2)]
            if rng.random() < 0.8:
                pos.sort(key=lambda p: (p.line, p.character))
            change = types.TextDocumentContentChangePartial(
                types.Range(*pos), "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3))))
            try:
                ref.apply_change(change)
            except Exception:
                break  # pygls fails on it: our handler logs and drops such an edit too
            proto._apply(ours, change)
            assert ours.source == ref.source, (text, change)


# --- the server over raw stdio -----------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tiny_starcoder: Path) -> Iterator[RawServer]:
    srv = RawServer(tiny_starcoder)
    srv.initialize(INIT)
    srv.wait_status("ready")
    yield srv
    assert srv.alive(), srv.log_tail()
    assert srv.close() == 0


@pytest.fixture(scope="module")
def reference_answer(tiny_starcoder: Path) -> list[dict[str, Any]]:
    """What an untouched server answers to the check request (greedy: deterministic)."""
    srv = RawServer(tiny_starcoder)
    try:
        srv.initialize(INIT)
        srv.wait_status("ready")
        return check_answer(srv)
    finally:
        srv.close()


def test_hypothesis_fuzz(server: RawServer) -> None:
    examples = int(os.environ.get(FUZZ_EXAMPLES_ENV) or CI_EXAMPLES)
    before = server.messages_sent
    stats = run_fuzz(server, examples=examples, seed_value=FUZZ_SEED)
    print(f"fuzz: {stats.batches} batches, {server.messages_sent - before} messages, "
          f"{stats.requests} requests answered, peak RSS {server.peak_rss_mb():.0f} MB")
    assert stats.batches >= min(examples, 20)


def test_framing_is_resynchronised(server: RawServer) -> None:
    """Each kind of broken framing, then a request that must still be answered."""
    body = b'{"jsonrpc": "2.0", "method": "foo/notify"}'
    broken = [
        b"Content-Length: abc\r\n\r\n" + body,
        b"Content-Length: 5\r\n\r\n" + body,  # too short: the rest is junk
        b"Content-Length: %d\r\n\r\n" % (len(body) + 4) + body + b"junk",
        b"garbage without any header end " * 600,  # longer than MAX_HEADER_BYTES
        b"X-Only: header\r\n\r\n",
        frame(b"\xff\xfe not utf-8"),
        frame(b"[" * 100_000),  # nesting deeper than the JSON parser's recursion limit
        frame(b'{"jsonrpc": "2.0", "id": {"no": 1}, "method": "starcoder/stats"}'),
        frame(b'{"jsonrpc": "2.0", "id": 1.5, "method": "starcoder/stats"}'),
    ]
    for data in broken:
        server.write(data)
        msg_id = server.request("starcoder/stats", {})
        answer = server.wait([msg_id], 30)[msg_id]
        assert answer["result"]["state"] == "ready", (data[:60], answer)
    codes = {m["error"]["code"] for m in server.null_id_errors}
    assert {-32700, -32600} <= codes, codes


def test_oversized_message_is_skipped_unread(server: RawServer) -> None:
    """A Content-Length over MAX_MESSAGE_BYTES is skipped as it streams, never allocated."""
    size = defaults.MAX_MESSAGE_BYTES + 1
    rss0 = server.rss_mb()
    server.write(b"Content-Length: %d\r\n\r\n" % size)
    chunk = b"x" * (1 << 20)
    left = size
    while left:
        n = min(left, len(chunk))
        server.write(chunk[:n], count=False)
        left -= n
    msg_id = server.request("starcoder/stats", {})
    assert "result" in server.wait([msg_id], 60)[msg_id]
    assert server.rss_mb() - rss0 < defaults.MAX_MESSAGE_BYTES / 2**20 / 2, "body was buffered"


def test_requests_with_wrong_params_get_errors(server: RawServer) -> None:
    bad = [
        ("textDocument/inlineCompletion", {"textDocument": {"uri": URI},
                                           "position": {"line": -1, "character": 0},
                                           "context": {"triggerKind": 1}}, -32602),
        ("textDocument/completion", {"position": "here"}, -32602),
        ("textDocument/completion", [1, 2, 3], -32602),
        ("workspace/executeCommand", {"command": "starcoder.explain", "arguments": [1]}, -32602),
        ("workspace/executeCommand", {"command": "starcoder.explain",
                                      "arguments": ["file:///not/open.py", {"start": 0}]}, -32602),
        ("no/such/method", {}, -32601),
    ]
    for method, params, code in bad:
        msg_id = server.request(method, params)
        answer = server.wait([msg_id], 30)[msg_id]
        assert answer.get("error", {}).get("code") == code, (method, params, answer)


def test_positions_out_of_range_and_inside_surrogate_pairs(server: RawServer) -> None:
    uri = "file:///fuzz/emoji.py"
    open_doc(server, uri, "s = '😀😀'\nx = 1\n")
    # (line, UTF-16 column): past the line end, past the last line, inside a surrogate pair.
    ids = [inline(server, uri, line, col)
           for line, col in ((0, 5), (0, 6), (0, 999), (7, 3), (2**31 - 1, 2**31 - 1), (1, 0))]
    answers = server.wait(ids, 60)
    for msg_id in ids:
        assert "result" in answers[msg_id], answers[msg_id]
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 0},  # version goes backwards
        "contentChanges": [{"range": {"start": {"line": 0, "character": 6},
                                      "end": {"line": 0, "character": 5}}, "text": "?"}]})
    server.notify("textDocument/didChange", {  # never opened
        "textDocument": {"uri": "file:///fuzz/never.py", "version": 2},
        "contentChanges": [{"text": "x"}]})
    msg_id = inline(server, uri, 1, 0)
    assert "result" in server.wait([msg_id], 60)[msg_id]


def test_huge_and_binary_documents(server: RawServer) -> None:
    """10 MB documents are refused with one clear message each; memory stays bounded."""
    big = ("x = 1  # padding\n" * 700_000)[: 10 * 2**20]
    rss0 = server.rss_mb()
    for n in range(4):
        uri = f"file:///fuzz/huge{n}.py"
        open_doc(server, uri, big)
        insert(server, uri, 2, 3, 0, "y")
        msg_id = inline(server, uri, 5, 0)
        assert items(server.wait([msg_id], 120)[msg_id]) == []
    growth = server.rss_mb() - rss0
    # A normal document that grows past the limit is dropped too, and told once.
    uri = "file:///fuzz/grows.py"
    open_doc(server, uri, "a = 1\n")
    for v in range(2, 5):
        insert(server, uri, v, 0, 0, "z" * (defaults.MAX_DOCUMENT_BYTES // 2))
    msg_id = inline(server, uri, 0, 0)
    assert items(server.wait([msg_id], 60)[msg_id]) == []
    # Binary (NUL) text below the limit is completed like any other text.
    open_doc(server, "file:///fuzz/nul.bin", "\x00\x01\x02 binary \x00" * 1000)
    msg_id = inline(server, "file:///fuzz/nul.bin", 0, 5)
    assert "result" in server.wait([msg_id], 60)[msg_id]
    time.sleep(0.5)
    told = [m for m in shown_messages(server) if "larger than" in m]
    assert sorted(m.split(" is larger")[0].removeprefix("starcoder-lsp: ") for m in told) == [
        "grows.py", "huge0.py", "huge1.py", "huge2.py", "huge3.py"], told
    print(f"RSS growth after four 10 MB documents: {growth:.0f} MB")
    assert growth < 200, f"RSS grew {growth:.0f} MB"


def test_long_line_is_not_quadratic(server: RawServer) -> None:
    """A 100,000-character line: the answer comes as fast as on a normal file (measured)."""
    uri = "file:///fuzz/long.py"
    line = "v = [" + ", ".join(str(i % 97) for i in range(40_000))
    line = line[:100_000]
    open_doc(server, uri, "import os\n" + line + "\nprint(v)\n")
    times = []
    for col in (100_000, 50_000, 99_990):
        t0 = time.perf_counter()
        msg_id = inline(server, uri, 1, col)
        assert "result" in server.wait([msg_id], 120)[msg_id]
        times.append(time.perf_counter() - t0)
    # Typing at the end of the long line, a completion per keystroke: time and memory stay flat
    # (each keystroke used to add ~0.3 MB of token-count memo keys, without bound).
    rss0 = server.rss_mb()
    t0 = time.perf_counter()
    for k in range(250):
        insert(server, uri, 2 + k, 1, 100_000 + k, "1")
        msg_id = inline(server, uri, 1, 100_001 + k)
        assert "result" in server.wait([msg_id], 120)[msg_id]
    typing = time.perf_counter() - t0
    growth = server.rss_mb() - rss0
    print(f"100k-char line: completions {[round(t, 2) for t in times]} s; 250 keys with a "
          f"completion each {typing:.1f} s, RSS +{growth:.0f} MB")
    assert max(times) < 20 and typing < 250 * 1.0
    assert growth < 50, f"RSS grew {growth:.0f} MB while typing in a long line"


def test_edit_storm_1000_changes_per_second(server: RawServer) -> None:
    edit_storm(server)


def test_cancel_storm(server: RawServer) -> None:
    cancel_storm(server)


def test_normal_completion_afterwards(server: RawServer,
                                      reference_answer: list[dict[str, Any]]) -> None:
    """After all of the above, the check request answers what an untouched server answers."""
    got = check_answer(server)
    assert [i["insertText"] for i in got] == [i["insertText"] for i in reference_answer]
    assert server.alive() and not server.violations


def test_requests_before_initialize_and_after_shutdown_are_answered(tiny_starcoder: Path) -> None:
    srv = RawServer(tiny_starcoder)
    try:
        open_doc(srv, URI, CHECK_TEXT)  # before initialize: dropped, not fatal
        early = [inline(srv, URI, 0, 0), srv.request("starcoder/stats", {})]
        for answer in srv.wait(early, 30).values():
            assert answer["error"]["code"] == -32002, answer
        srv.initialize(INIT)
        srv.wait_status("ready")
        shutdown = srv.request("shutdown")
        later = [srv.request("starcoder/stats", {}), inline(srv, URI, 0, 0),
                 srv.request("shutdown")]
        answers = srv.wait([shutdown, *later], 30)
        assert answers[shutdown]["result"] is None
        for msg_id in later:
            assert answers[msg_id]["error"]["code"] == -32600, answers[msg_id]
        srv.notify("exit")
        assert srv.proc.wait(30) == 0
    finally:
        srv.close()


@pytest.mark.real_model
def test_real_completion_is_correct_after_a_storm(qwen_gguf: Path) -> None:
    """One storm on the real model, then a completion whose text is checked."""
    srv = RawServer(qwen_gguf)
    try:
        srv.initialize({"maxTokens": 16, "contextTokens": 1024})
        srv.wait_status("ready", timeout=300)
        run_fuzz(srv, examples=10, seed_value=FUZZ_SEED)
        uri = "file:///fuzz/add.py"
        open_doc(srv, uri, "x = 0\n")
        for v in range(2, 300):
            insert(srv, uri, v, 0, 0, "#")
        srv.write(b"Content-Length: nope\r\n\r\n" + encode({"jsonrpc": "2.0", "method": "x"}))
        srv.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 400},
                                              "contentChanges": [{"text": "def add(a, b):\n    return "}]})
        msg_id = inline(srv, uri, 1, 11)
        text = "".join(i["insertText"] for i in items(srv.wait([msg_id], 300)[msg_id]))
        assert "a + b" in text or "a+b" in text, json.dumps(text)
        assert srv.alive() and not srv.violations
    finally:
        srv.close()


def test_tcp_transport_uses_the_same_framing(tiny_starcoder: Path) -> None:
    """`serve --tcp`: broken framing first, then requests are still answered."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "t" * 32  # listeners take their token from the environment too
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "serve", "--tcp",
                             f"127.0.0.1:{port}", "--model", str(tiny_starcoder), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "STARCODER_LSP_TOKEN": token})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
        with conn:
            conn.sendall(b"Content-Length: x\r\n\r\n{}" + encode({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {},
                           "initializationOptions": {"token": token}}}) + encode(
                {"jsonrpc": "2.0", "id": 2, "method": "no/such"}))
            data = b""
            while data.count(b"Content-Length") < 2:
                chunk = conn.recv(65536)
                assert chunk, data
                data += chunk
        assert b'"id": 1' in data and b'"capabilities"' in data
        assert b'"id": 2' in data and b"-32601" in data
    finally:
        proc.kill()
        proc.wait()
