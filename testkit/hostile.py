"""Hostile LSP traffic as hypothesis strategies, and the fuzz loop that checks the server's answers.

A batch is a list of steps, each one of: a well-framed request (any method, any params: right
types with absurd values, or arbitrary JSON), a notification (didOpen/didChange/didClose with
hostile text and ranges, cancels, unknown methods), a request that breaks JSON-RPC but carries an
id (it must be answered with an error), or bytes that break the framing itself (junk headers, wrong
Content-Length, invalid JSON or UTF-8). After each batch every request with an id must have exactly
one answer, the process must be alive and nothing malformed may have come back.

Used by tests/test_fuzz.py (a short fixed seed) and benchmarks/fuzz_long.py (≥ 10,000 messages).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from testkit.rawrpc import RawServer, encode, frame

URIS = ("file:///fuzz/a.py", "file:///fuzz/b%20c.ts", "untitled:Untitled-1", "file:///fuzz/e.py",
        "file:///dev/zero", "file:///etc/passwd", "file:///fuzz/../../etc/shadow")
REQUESTS = ("textDocument/inlineCompletion", "textDocument/completion", "textDocument/codeAction",
            "workspace/executeCommand", "starcoder/stats", "textDocument/hover", "foo/bar",
            "$/unknownRequest", "")
NOTIFICATIONS = ("textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
                 "$/cancelRequest", "$/setTrace", "foo/notify", "textDocument/didSave")
SPECIAL_TEXTS = ("", "\x00\x00bin\x00ary\x00", "😀" * 7 + "\n😀x", "a\r\nb\rc\nd", "\u2028\u2029\x85",
                 "\ud800 lone surrogate \udfff", "def f(x):\n    return x\n", "x" * 3000, "\t\n" * 50,
                 "<fim_prefix><fim_suffix><fim_middle><|endoftext|>", "{{ 7*7 }}")
BIG_INTS = (2**31 - 1, 2**31, -(2**31), 2**53, 2**64, -1)

ints = st.one_of(st.integers(-3, 40), st.sampled_from(BIG_INTS))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
texts = st.one_of(st.text(max_size=120), st.sampled_from(SPECIAL_TEXTS),
                  st.lists(st.sampled_from(SPECIAL_TEXTS), max_size=4).map("".join))
positions = st.one_of(st.fixed_dictionaries({"line": ints, "character": ints}), json_values)
ranges = st.one_of(st.fixed_dictionaries({"start": positions, "end": positions}), json_values)
uris = st.one_of(st.sampled_from(URIS), st.text(max_size=20))
doc_ids = st.fixed_dictionaries({"uri": uris})


def _params(method: str) -> st.SearchStrategy[Any]:
    """Params for `method`: mostly the right shape with hostile values, sometimes any JSON."""
    shaped: dict[str, st.SearchStrategy[Any]] = {
        "textDocument/inlineCompletion": st.fixed_dictionaries(
            {"textDocument": doc_ids, "position": positions,
             "context": st.fixed_dictionaries({"triggerKind": st.sampled_from([1, 2, 0, 7])})}),
        "textDocument/completion": st.fixed_dictionaries(
            {"textDocument": doc_ids, "position": positions}),
        "textDocument/codeAction": st.fixed_dictionaries(
            {"textDocument": doc_ids, "range": ranges,
             "context": st.just({"diagnostics": []})}),
        "workspace/executeCommand": st.fixed_dictionaries(
            {"command": st.sampled_from(["starcoder.explain", "rm -rf /", ""]),
             "arguments": st.one_of(st.tuples(uris, ranges).map(list), st.lists(json_values,
                                                                                max_size=3))}),
        "textDocument/didOpen": st.fixed_dictionaries({"textDocument": st.fixed_dictionaries(
            {"uri": uris, "languageId": st.sampled_from(["python", "", "c"]),
             "version": ints, "text": texts})}),
        "textDocument/didChange": st.fixed_dictionaries(
            {"textDocument": st.fixed_dictionaries({"uri": uris, "version": ints}),
             "contentChanges": st.lists(st.one_of(
                 st.fixed_dictionaries({"range": ranges, "text": texts}),
                 st.fixed_dictionaries({"text": texts})), max_size=3)}),
        "textDocument/didClose": st.fixed_dictionaries({"textDocument": doc_ids}),
    }
    base = shaped.get(method)
    return st.one_of(base, base, base, json_values) if base is not None else json_values


@dataclass(frozen=True)
class Step:
    kind: str  # request | notify | cancel | bad_request | raw
    method: str = ""
    params: Any = None
    raw: bytes = b""
    str_id: bool = False


def _no_header(data: bytes) -> bool:
    return b"\r\n\r\n" not in data and re.search(rb"content-length", data, re.I) is None


@st.composite
def _broken_frame(draw: st.DrawFn) -> bytes:
    """Bytes that break framing or JSON but never hide a later message (no huge lengths)."""
    body = json.dumps({"jsonrpc": "2.0", "method": "foo/notify",
                       "params": draw(json_values)}).encode()
    junk = draw(st.binary(max_size=40).filter(_no_header))
    choice = draw(st.integers(0, 8))
    if choice == 0:  # a header block with no Content-Length
        return junk + b"X-Nonsense: 1\r\n\r\n"
    if choice == 1:  # a Content-Length that is not a number: the body becomes junk
        bad = draw(st.sampled_from([b"abc", b"-5", b"", b"1e3", b"0x10", b"99999999999999", b"0"]))
        return b"Content-Length: " + bad + b"\r\n\r\n" + body
    if choice == 2:  # too short: the body is cut, the rest is junk before the next header
        return b"Content-Length: %d\r\n\r\n" % max(1, len(body) // 2) + body
    if choice == 3:  # too long, followed by as many junk bytes
        extra = draw(st.integers(1, 30))
        return b"Content-Length: %d\r\n\r\n" % (len(body) + extra) + body + b"x" * extra
    if choice == 4:  # not JSON, or not UTF-8
        return frame(draw(st.sampled_from([b"{not json", b"\xff\xfe\x00", b"nul\x00l", b"[" * 5000,
                                           b'{"a": 1', b"\x80abc"])) + junk.strip(b"\r\n") + b" ")
    if choice == 5:  # JSON that is not a JSON-RPC object
        return frame(json.dumps(draw(json_values)).encode())
    if choice == 6:  # junk bytes, then a proper header (must resynchronise)
        return junk + frame(body)
    if choice == 7:  # lower-case header name and an extra header: valid
        return (b"content-length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8"
                b"\r\n\r\n" % len(body)) + body
    return b"\r\n" + frame(body)  # a stray blank line first


@st.composite
def steps(draw: st.DrawFn) -> Step:
    kind = draw(st.sampled_from(["request", "request", "notify", "notify", "notify", "cancel",
                                 "bad_request", "raw"]))
    if kind == "request":
        method = draw(st.sampled_from(REQUESTS))
        return Step(kind, method, draw(_params(method)), str_id=draw(st.booleans()))
    if kind == "notify":
        method = draw(st.sampled_from(NOTIFICATIONS))
        return Step(kind, method, draw(_params(method)))
    if kind == "cancel":
        return Step(kind, params=draw(st.one_of(st.none(), ints, st.text(max_size=5))))
    if kind == "bad_request":  # breaks JSON-RPC but has an id: must get an error
        return Step(kind, draw(st.sampled_from(["wrong_version", "no_version", "method_type"])))
    return Step(kind, raw=draw(_broken_frame()))


batches = st.lists(steps(), min_size=1, max_size=25)


@dataclass
class FuzzStats:
    batches: int = 0
    requests: int = 0  # requests that had to be answered
    expected: list[Any] = field(default_factory=list)  # their ids (for a final count)


def send_batch(server: RawServer, batch: list[Step]) -> list[Any]:
    """Send `batch`; return the ids that must be answered."""
    expected: list[Any] = []
    last: Any = None
    for step in batch:
        if step.kind == "request":
            msg_id = f"s{server.next_id()}" if step.str_id else server.next_id()
            last = server.request(step.method, step.params, msg_id=msg_id)
            expected.append(last)
        elif step.kind == "notify":
            server.notify(step.method, step.params)
        elif step.kind == "cancel":
            target = last if step.params is None else step.params
            server.notify("$/cancelRequest", {"id": target})
        elif step.kind == "bad_request":
            msg_id = server.next_id()
            message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": "starcoder/stats"}
            if step.method == "wrong_version":
                message["jsonrpc"] = "1.0"
            elif step.method == "no_version":
                del message["jsonrpc"]
            else:
                message["method"] = 42
            server.write(encode(message))
            expected.append(msg_id)
        else:
            server.write(step.raw)
    return expected


def run_fuzz(server: RawServer, *, examples: int, seed_value: int,
             stats: FuzzStats | None = None) -> FuzzStats:
    """Run `examples` hypothesis batches against a running, initialised server."""
    stats = stats or FuzzStats()

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(batches)
    def one(batch: list[Step]) -> None:
        stats.batches += 1
        expected = send_batch(server, batch)
        stats.expected += expected  # before waiting: a long run counts the unanswered ones
        server.wait(expected, 120.0)
        assert server.alive(), f"the server died; log tail:\n{server.log_tail()}"
        assert not server.violations, server.violations[:5]
        stats.requests += len(expected)

    one()
    return stats


# --- hostile documents: nothing they contain may stall the server's event loop -----------------------
_K = 100_000
HOSTILE_DOCUMENTS: dict[str, str] = {
    # The old C_SIGNATURE needed 1.2 s for 2 KB of this, ~30 s for 100 KB.
    "spaces-around-a-call": " " * (_K // 2) + "a()" + " " * (_K // 2) + "\n",
    "spaces-and-brackets": ("  ( [ { " * (_K // 8)) + "\n" + (" } ] ) " * (_K // 7)) + "{\n",
    "signature-that-never-closes": "int " + " " * (_K // 2) + "a(" + " " * (_K // 2) + ") x\n",
    "minified-bundle": ("function a(b,c){return b+c};var x=a(1,2);if(x){y=[1,2,3].map("
                        "function(z){return z*2})}" * 12_000) + "\n",
    "deep-nesting": "".join(" " * (i % 120) + "if (x) {\n" for i in range(3000))
                    + "[" * 50_000 + "]" * 50_000 + "\n"
                    + "".join(" " * (i % 120) + "}\n" for i in range(3000, 0, -1)),
    "deep-python": "".join(" " * i + f"def f{i}():\n" for i in range(1200)),
    "generated-table": "x = 1\n" * 95_000,  # just under MAX_DOCUMENT_LINES
}


async def hostile_round(session: Any, base_uri: str, normal_uri: str,
                        documents: dict[str, str] | None = None) -> dict[str, float]:
    """Open, edit, code-action, complete in and close every document (default: the hostile ones)
    as Python, so each is also cross-file context for `normal_uri`; the worst event-loop lag (ms)
    of each, as the server measured it (`starcoder/stats` `loopLagMs`: the worst since the
    previous stats call)."""
    from lsprotocol import types

    def rng(a: int, b: int, c: int, d: int) -> types.Range:
        return types.Range(types.Position(a, b), types.Position(c, d))

    await session.stats()
    lags: dict[str, float] = {}
    for name, text in (documents or HOSTILE_DOCUMENTS).items():
        uri = f"{base_uri}/{name}.py"
        lines = text.split("\n")
        mid = len(lines[0]) // 2
        session.open(uri, text)
        for version in range(2, 7):  # typing in the middle of the first (longest) line
            session.client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=rng(0, mid + version, 0, mid + version), text="x")]))
        half, last = len(lines) // 2, max(0, len(lines) - 2)
        for where in (rng(0, 0, 0, 0), rng(0, mid, 0, mid), rng(half, 3, half, 3),
                      rng(last, 0, last, 0), rng(0, 0, len(lines) - 1, 0)):
            await session.client.text_document_code_action_async(types.CodeActionParams(
                types.TextDocumentIdentifier(uri), where, types.CodeActionContext(diagnostics=[])))
        await session.inline(uri, 0, mid)
        await session.inline(uri, half, 1)
        await session.inline(normal_uri, 1, 4)
        session.client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(uri)))
        lags[name] = float((await session.stats())["loopLagMs"])
    return lags
