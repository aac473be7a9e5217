"""A request that fails for an internal reason is never silent: logged once with its cause, counted
in `starcoder/stats`, and carried in `starcoder/status` (`errors`, `lastError`, state still
`ready`) until that kind of request works again."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_server.protocol.failures import Failures
from tests.conftest import Session, lsp_session

URI = "file:///tmp/starcoder-errors/example.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


# --- pure ---------------------------------------------------------------------------------------------
def test_failures_count_log_once_and_clear_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    f = Failures()
    assert f.status_fields() == {"errors": 0, "lastError": ""}
    with caplog.at_level(logging.DEBUG, "lsp_server.protocol.failures"):
        for _ in range(3):
            f.failed("textDocument/inlineCompletion", ValueError("Can't mix absolute and relative"))
        f.failed("textDocument/codeAction", KeyError("x"))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info for r in errors)  # one traceback per cause
    assert f.status_fields() == {"errors": 4, "lastError": "textDocument/codeAction: KeyError: 'x'"}
    assert f.stats() == {"errors": 4, "errorsSinceSuccess": 4,
                         "lastError": "textDocument/codeAction: KeyError: 'x'"}
    # Code actions that work do not hide completions that still fail.
    assert f.succeeded("textDocument/codeAction")
    assert f.status_fields() == {"errors": 3, "lastError": "textDocument/inlineCompletion: "
                                                           "ValueError: Can't mix absolute and relative"}
    assert not f.succeeded("textDocument/codeAction")  # nothing changed
    assert f.succeeded("textDocument/inlineCompletion")
    assert f.status_fields() == {"errors": 0, "lastError": ""}
    assert f.stats()["errors"] == 4 and f.stats()["lastError"]  # history stays for bug reports
    caplog.clear()
    with caplog.at_level(logging.ERROR, "lsp_server.protocol.failures"):
        f.failed("textDocument/inlineCompletion", ValueError("Can't mix absolute and relative"))
    assert len(caplog.records) == 1  # after a recovery the same cause is news again


def test_a_cause_is_one_short_line() -> None:
    f = Failures()
    f.failed("x", RuntimeError("first line\n" + "traceback " * 200))
    assert f.last == "x: RuntimeError: first line"
    f.failed("y", RuntimeError("z" * 2000))
    assert len(f.last) <= 300


# --- over stdio: a real failure inside the server -----------------------------------------------------
# llama_decode failing mid-generation (out of KV memory, a GPU error) is what an internal failure
# looks like: a sitecustomize loaded by the server process makes it fail while a flag file exists.
FAULT = '''
import os, pathlib
from lsp_server.engine import kv
_flag = pathlib.Path(os.environ["STARCODER_TEST_DECODE_FAULT"])
_real = kv.KVContext.decode
def _decode(self, *args, **kwargs):
    if _flag.exists():
        raise kv.DecodeError("llama_decode returned -3 (injected by the test)")
    return _real(self, *args, **kwargs)
kv.KVContext.decode = _decode
'''


async def _wait(predicate: object, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def _tracebacks(s: Session) -> list[str]:
    return [m.message for m in s.client.log_messages if "failed with an internal error" in m.message]


async def test_failing_requests_show_errors_until_one_works(preset: str, tiny_starcoder: Path,
                                                            tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(FAULT)
    flag = tmp_path / "fail-now"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                       os.environ.get("PYTHONPATH")])),
           "STARCODER_TEST_DECODE_FAULT": str(flag)}
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 4},
                           env=env) as s:
        await s.wait_status("ready")
        s.open(URI, TEXT)
        assert isinstance(await s.inline(URI, 5, 4), list)
        assert (await s.stats())["errors"] == 0
        flag.touch()
        n = len(s.statuses)
        for line, char in ((1, 11), (0, 3), (4, 3)):  # states not seen before (none cached)
            assert await s.inline(URI, line, char) == []  # an empty answer, never an error
        await _wait(lambda: any(st.get("errors") == 3 for st in s.statuses[n:]))
        failing = [st for st in s.statuses[n:] if st.get("errors")][-1]
        assert failing["state"] == "ready", failing  # the DESIGN states are unchanged
        assert failing["lastError"] == ("textDocument/inlineCompletion: DecodeError: llama_decode "
                                        "returned -3 (injected by the test)")
        stats = await s.stats()
        assert (stats["errors"], stats["errorsSinceSuccess"]) == (3, 3), stats
        await _wait(lambda: _tracebacks(s))
        await asyncio.sleep(0.3)
        assert len(_tracebacks(s)) == 1, _tracebacks(s)  # logged once, with its traceback
        assert "Traceback" in _tracebacks(s)[0] and "DecodeError" in _tracebacks(s)[0]
        flag.unlink()
        n = len(s.statuses)
        assert isinstance(await s.inline(URI, 1, 5), list)
        await _wait(lambda: any(st.get("errors") == 0 for st in s.statuses[n:]))
        healed = s.statuses[-1]
        assert healed["state"] == "ready" and healed["errors"] == 0 and healed["lastError"] == ""
        stats = await s.stats()
        assert (stats["errors"], stats["errorsSinceSuccess"]) == (3, 0), stats
        assert "DecodeError" in stats["lastError"]
        # Every other status keeps the fields (0 and '' when all is well).
        assert all("errors" in st and "lastError" in st for st in s.statuses)
        code = await s.client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(URI), types.Range(types.Position(5, 4),
                                                           types.Position(5, 4)),
            types.CodeActionContext(diagnostics=[])))
        assert code  # unaffected by the completions' failures
