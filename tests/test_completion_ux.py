"""Completion that stays out of the way and counts how it does, through the real server on the
real Qwen model: no ghost text while deleting (unless asked for, or the setting says so), and the
local usage stats (shown, accepted, partially accepted, dismissed, latency) with their report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import Session, lsp_session
from tests.test_lsp_qwen import FIB

pytestmark = pytest.mark.real_model

URI = "file:///tmp/starcoder-test/ux.py"
BODY = 4  # the empty line in fibonacci's body


def _delete(s: Session, version: int, line: int, start: int, end: int) -> None:
    s.change(URI, version, types.Range(types.Position(line, start), types.Position(line, end)), "")


async def test_no_suggestion_while_deleting_unless_asked_for_or_turned_on(preset: str,
                                                                          qwen_gguf: Path) -> None:
    async with lsp_session(preset, {"model": str(qwen_gguf)}) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, FIB.replace("    \n", "    retur\n", 1))
        _delete(s, 2, BODY, 8, 9)  # Backspace: "    retu"
        assert await s.inline(URI, BODY, 8) == []
        assert (await s.stats())["requests"] == 0  # answered before the model was asked
        asked = await s.inline(URI, BODY, 8, invoked=True)  # the user asks for one
        assert asked and asked[0].insert_text, asked
        s.change(URI, 3, types.Range(types.Position(BODY, 8), types.Position(BODY, 8)), "r")
        typed = await s.inline(URI, BODY, 9)  # typing again: suggestions are back
        assert typed and typed[0].insert_text, typed
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"model": str(qwen_gguf), "completeAfterDeletion": True}}))
        _delete(s, 4, BODY, 8, 9)
        for _ in range(50):  # the setting applies once the server has read it
            if await s.inline(URI, BODY, 8):
                break
        else:
            pytest.fail("completeAfterDeletion did not bring suggestions back after a deletion")


async def test_usage_stats_count_each_outcome_and_the_report_shows_them(qwen_gguf: Path) -> None:
    async with lsp_session("visual-studio-code", {"model": str(qwen_gguf)}) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, FIB)
        first = await s.inline_whole(URI, BODY, 4)
        assert first.item is not None and first.item.command is not None
        assert first.item.command.command == "starcoder.accepted"
        # Accepted: the editor inserts it and runs the item's command.
        text = str(first.item.insert_text)
        s.change(URI, 2, types.Range(types.Position(BODY, 4), types.Position(BODY, 4)), text)
        await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="starcoder.accepted", arguments=first.item.command.arguments))
        stats = await s.stats()
        assert (stats["shown"], stats["accepted"], stats["acceptedChars"]) >= (1, 1, len(text))
        # Dismissed: the next suggestion, then the user types something else there.
        s.open("file:///tmp/starcoder-test/two.py", "def square(x):\n    return ")
        second = await s.inline_item("file:///tmp/starcoder-test/two.py", 1, 11)
        assert second.item is not None, second
        s.change("file:///tmp/starcoder-test/two.py", 2,
                 types.Range(types.Position(1, 11), types.Position(1, 11)), "None  # ")
        await s.inline("file:///tmp/starcoder-test/two.py", 1, 19)
        stats = await s.stats()
        assert stats["dismissed"] >= 1, stats
        assert 0 < stats["acceptanceRate"] < 1, stats
        rows = {r.language: r for r in stats["latency"]}  # JSON objects: pygls' namedtuples
        assert rows["python"].model == "qwen2.5-coder-0.5b" and rows["python"].count >= 2
        assert stats["firstSuggestionP50"] is not None
        assert re.fullmatch(r"\d+ of \d+ suggestions accepted \(\d+%\) · p50 [\d.]+ s",
                            stats["summary"]), stats["summary"]
        report = await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="starcoder.stats", arguments=[]))
        assert isinstance(report, str) and "| Accepted | 1 |" in report, report
        assert re.search(r"\| python \| qwen2\.5-coder-0\.5b \| \d+ \| [\d.]+ s \| [\d.]+ s \|",
                         report), report
