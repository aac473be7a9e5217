"""Storms over raw JSON-RPC: an edit storm, a cancel storm, and the check request after them.

Each asserts what the server must do under it (every request answered, the document's text
exact), so tests/test_fuzz.py runs them once and `benchmarks/fuzz_long.py` round after round.
"""

from __future__ import annotations

import time
from typing import Any

from testkit.rawrpc import RawServer

URI = "file:///fuzz/check.py"
CHECK_TEXT = "def scale_prices(prices, factor):\n    result = []\n    for p in prices:\n        "
INIT = {"maxTokens": 6}  # the storms' servers: short completions keep the worker free


def inline(server: RawServer, uri: str, line: int, character: int) -> Any:
    return server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
        "context": {"triggerKind": 2}})


def open_doc(server: RawServer, uri: str, text: str, version: int = 1) -> None:
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": version, "text": text}})


def insert(server: RawServer, uri: str, version: int, line: int, col: int, text: str) -> None:
    pos = {"line": line, "character": col}
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": version},
        "contentChanges": [{"range": {"start": pos, "end": pos}, "text": text}]})


def items(answer: dict[str, Any]) -> list[dict[str, Any]]:
    assert "result" in answer, answer
    result = answer["result"]
    return list(result["items"] if isinstance(result, dict) else result or [])


def check_answer(server: RawServer) -> list[dict[str, Any]]:
    """The normal completion used after every storm."""
    server.notify("textDocument/didClose", {"textDocument": {"uri": URI}})
    open_doc(server, URI, CHECK_TEXT)
    msg_id = inline(server, URI, 3, 8)
    return items(server.wait([msg_id], 120)[msg_id])


def edit_storm(server: RawServer) -> None:
    """1,000 didChange in about a second, inline requests cancelled as they are superseded.

    Every other change deletes the character just typed or replaces it by a kept one, so the
    server's copy of the line is known at the end: its code action's title shows it.
    """
    uri = "file:///fuzz/storm.py"
    open_doc(server, uri, "def storm():\n    pass\n")
    ids: list[Any] = []
    version, col, kept = 1, 9, ""
    t0 = time.perf_counter()
    for k in range(1000):
        version += 1
        if k % 2 == 0:
            insert(server, uri, version, 0, col, "abcdefghij"[k % 10])
        else:
            keep = (k // 2) % 25 == 0
            new = "KLMNOPQRST"[len(kept) % 10] if keep else ""
            server.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": 0, "character": col},
                                              "end": {"line": 0, "character": col + 1}},
                                    "text": new}]})
            if keep:
                kept += new
                col += 1
        if k % 20 == 0:
            if ids:
                server.notify("$/cancelRequest", {"id": ids[-1]})
            ids.append(inline(server, uri, 0, col))
        if k % 100 == 99:  # pace to ~1,000 per second
            time.sleep(max(0.0, t0 + (k + 1) / 1000 - time.perf_counter()))
    rate = 1000 / (time.perf_counter() - t0)
    answers = server.wait(ids, 120)
    for answer in answers.values():
        assert "result" in answer or answer["error"]["code"] == -32800, answer
    msg_id = server.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "context": {"diagnostics": []},
        "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}})
    answer = server.wait([msg_id], 30)[msg_id]
    print(f"storm: {rate:.0f} didChange/s, {len(ids)} requests answered")
    assert rate > 500
    assert len(kept) == 20
    assert answer["result"] and answer["result"][0]["title"] == f"Explain `def storm{kept}`", answer


def cancel_storm(server: RawServer) -> None:
    """200 inline requests, each cancelled at once (and an unknown id with each): every one is
    answered, with a result or RequestCancelled."""
    open_doc(server, "file:///fuzz/cancel.py", "def f(x):\n    return x\n" * 50)
    ids: list[Any] = []
    for _ in range(200):
        msg_id = inline(server, "file:///fuzz/cancel.py", 1, 4)
        server.notify("$/cancelRequest", {"id": msg_id})
        server.notify("$/cancelRequest", {"id": 10**9 + msg_id})  # unknown ids
        ids.append(msg_id)
    answers = server.wait(ids, 120)
    for answer in answers.values():
        assert "result" in answer or answer["error"]["code"] == -32800, answer
