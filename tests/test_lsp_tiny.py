"""End to end over stdio with the tiny StarCoder GGUF: the protocol, in both editor presets.

The tiny model's text is noise; these tests pin what the server does with it: capabilities,
status, answers before/after ready, explicit ranges, the completion fallback, cancellation,
settings changes and a prompt shutdown.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types

from tests.conftest import capabilities, lsp_session

URI = "file:///tmp/starcoder-test/example.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


async def test_initialize_advertises_inline_and_fallback(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1}) as s:
        caps = s.result.capabilities
        assert caps.inline_completion_provider is not None
        assert caps.completion_provider is not None
        sync = caps.text_document_sync
        kind = sync.change if isinstance(sync, types.TextDocumentSyncOptions) else sync
        assert kind == types.TextDocumentSyncKind.Incremental
        general = capabilities(preset).general
        offered = (general.position_encodings if general else None) or ["utf-16"]
        assert (caps.position_encoding or "utf-16") in offered  # negotiated, not assumed
        ready = await s.wait_status("ready", "error")
        assert ready["state"] == "ready", ready
        assert s.statuses[0]["state"] == "loading"


async def test_inline_completion_has_explicit_range(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 8}) as s:
        await s.wait_status("ready")
        s.open(URI, TEXT)
        # Mid-line, then at the empty indented line: both answer, any items carry a 1-line range.
        for line, char in ((1, 11), (5, 4)):
            items = await s.inline(URI, line, char)
            for item in items:
                assert item.range is not None
                assert item.range.start == item.range.end == types.Position(line, char)


async def test_request_before_ready_answers_at_once(preset: str, tiny_starcoder: Path) -> None:
    # A 3-second artificial delay in loading: the request must not wait for it.
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1},
                           faults=("--load-delay", "3")) as s:
        s.open(URI, TEXT)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        items = await s.inline(URI, 5, 4)
        assert items == []
        assert loop.time() - t0 < 2.0
        assert (await s.wait_status("loading", "ready"))["state"] == "loading"
        assert (await s.wait_status("ready"))["state"] == "ready"


async def test_incremental_change_and_completion_fallback(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 8}) as s:
        await s.wait_status("ready")
        s.open(URI, "x = 1\n")
        s.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(1, 0), types.Position(1, 0)),
                text="def f():\n    ")],
        ))
        result = await s.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(URI), position=types.Position(2, 4)))
        assert isinstance(result, types.CompletionList)
        for item in result.items:
            assert item.text_edit is not None
            assert item.text_edit.range.start == types.Position(2, 4)


async def test_cancel_request_gets_an_answer(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 2000}) as s:
        await s.wait_status("ready")
        s.open(URI, TEXT * 40)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(URI), position=types.Position(5, 4),
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic))
        # Send $/cancelRequest by hand but keep our future, so we see the server's answer. The
        # coroutine only writes the request once scheduled: make it a task first.
        fut = asyncio.ensure_future(s.client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="cancel-me"))
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        s.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
        try:
            result = await asyncio.wait_for(fut, timeout=10)
            assert result is None or isinstance(result, types.InlineCompletionList)
        except Exception as exc:  # the spec's answer: a RequestCancelled error
            assert "cancel" in str(exc).lower() or "-32800" in str(exc), exc
        assert loop.time() - t0 < 5, "a cancelled generation must stop within a token"
        # The server is still responsive and answers the next request.
        items = await asyncio.wait_for(s.inline(URI, 1, 11), timeout=60)
        assert isinstance(items, list)


async def test_settings_change_disables_and_reenables(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        n = len(s.statuses)
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"enable": False}}))
        assert (await s.wait_status("disabled", after=n))["state"] == "disabled"
        s.open(URI, TEXT)
        assert await s.inline(URI, 5, 4) == []
        n = len(s.statuses)
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"enable": True}}))
        assert (await s.wait_status("ready", after=n))["state"] == "ready"


async def test_invalid_setting_is_reported_not_fatal(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1, "contextTokens": "lots",
                                    "temperature": -3}) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        await s.wait_message(types.MessageType.Warning)
        texts = [m.message for m in s.client.messages]
        assert any("contextTokens" in t for t in texts), texts
        assert any("temperature" in t for t in texts), texts


async def test_shutdown_is_prompt_mid_generation(tiny_starcoder: Path) -> None:
    async with lsp_session("visual-studio-code",
                           {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 4000}) as s:
        await s.wait_status("ready")
        s.open(URI, TEXT)
        pending = asyncio.ensure_future(s.inline(URI, 5, 4))
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(s.client.shutdown_async(None), timeout=10)
        s.shut_down = True
        assert loop.time() - t0 < 5
        pending.cancel()


async def test_server_logs_reach_the_editor(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        for _ in range(50):
            if any("loaded" in m.message for m in s.client.log_messages):
                break
            await asyncio.sleep(0.05)
        messages = [m.message for m in s.client.log_messages]
        assert any("loaded" in m for m in messages), messages
        # Per-keystroke debug lines stay out of the editor's log even with -v.
        s.open(URI, TEXT)
        await s.inline(URI, 5, 4)
        later = [m.message for m in s.client.log_messages]
        assert not any(m.startswith("lsp_server.service: completion") for m in later), later
