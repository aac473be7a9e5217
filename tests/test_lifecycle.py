"""Model lifecycle: a failed switch keeps the old model serving; idle unload frees memory."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
from pathlib import Path

from lsprotocol import types

from testkit.rawrpc import status_mb
from tests.conftest import lsp_session

URI = "file:///tmp/starcoder-test/life.py"


def rss_mb(pid: int) -> float:
    mb = status_mb(pid, "VmRSS")
    if math.isnan(mb):
        raise AssertionError("no VmRSS")
    return mb


async def test_corrupt_new_file_keeps_the_old_model(tmp_path: Path, tiny_starcoder: Path) -> None:
    model = tmp_path / "model.gguf"
    shutil.copy(tiny_starcoder, model)
    async with lsp_session("visual-studio-code", {"model": str(model), "threads": 1,
                                                  "maxTokens": 4}) as s:
        await s.wait_status("ready")
        # The file is replaced (as a pull or a copy tool does: new file, then rename) by a corrupt
        # one, and a setting change makes the server reload it.
        staged = tmp_path / "staged.gguf"
        staged.write_bytes(b"GGUF" + b"\0" * 64)
        os.replace(staged, model)
        n = len(s.statuses)
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"model": str(model), "contextTokens": 4096}}))
        st = await s.wait_status("ready", "error", after=n + 1)
        assert st["state"] == "ready" and "model" in st["message"], st
        warning = await s.wait_message(types.MessageType.Warning)
        assert "still using model" in warning.message
        s.open(URI, "def f():\n    \n")
        assert isinstance(await s.inline(URI, 1, 4), list)  # the old model still serves


async def test_failed_switch_to_another_model_is_an_error(tmp_path: Path, tiny_starcoder: Path
                                                          ) -> None:
    async with lsp_session("neovim", {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        n = len(s.statuses)
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"model": str(tmp_path / "missing.gguf")}}))
        st = await s.wait_status("ready", "error", after=n + 1)
        assert st["state"] == "error" and "not found" in st["message"].lower(), st


async def test_idle_unload_frees_memory_and_reloads_on_demand(qwen_gguf: Path) -> None:
    async with lsp_session("neovim", {"model": str(qwen_gguf), "idleUnloadMinutes": 0.05}) as s:
        await s.wait_status("ready")
        s.open(URI, "def fibonacci(n):\n    if n < 2:\n        return n\n    \n")
        assert await s.inline(URI, 3, 4)
        pid = s.client._server.pid  # type: ignore[union-attr]
        loaded = rss_mb(pid)
        n = len(s.statuses)
        await s.wait_status("unloaded", after=n, timeout=60)
        await asyncio.sleep(0.5)
        freed = rss_mb(pid)
        assert freed < loaded - 250, (loaded, freed)  # the weights (~470 MB) are gone
        n = len(s.statuses)
        assert await s.inline(URI, 3, 4) == []  # answered at once, the load starts
        await s.wait_status("ready", after=n, timeout=60)
        assert await s.inline(URI, 3, 4)


def catalogue(path: Path, model: Path) -> None:
    path.write_text(
        "[models.mine]\n"
        'family = "starcoder"\n'
        "context_length = 8192\n"
        f'source = {{ kind = "path", path = "{model}" }}\n',
        encoding="utf-8",
    )


async def test_editing_models_toml_and_replacing_the_file_reload_live(tmp_path: Path,
                                                                     tiny_starcoder: Path,
                                                                     tiny_starcoder2: Path) -> None:
    models = tmp_path / "models.toml"
    first = tmp_path / "first.gguf"
    shutil.copy(tiny_starcoder, first)
    catalogue(models, first)
    async with lsp_session("neovim", {"model": "mine", "modelsFile": str(models),
                                      "threads": 1}) as s:
        await s.wait_status("ready")
        # 1. The entry now points at another file: the server notices and reloads.
        n = len(s.statuses)
        second = tmp_path / "second.gguf"
        shutil.copy(tiny_starcoder, second)
        catalogue(models, second)
        await s.wait_status("loading", after=n, timeout=30)
        assert (await s.wait_status("ready", "error", after=n + 1, timeout=30))["state"] == "ready"
        # 2. The model file itself is replaced (a new download renamed into place).
        n = len(s.statuses)
        staged = tmp_path / "staged.gguf"
        shutil.copy(tiny_starcoder2, staged)
        os.replace(staged, second)
        await s.wait_status("loading", after=n, timeout=30)
        assert (await s.wait_status("ready", "error", after=n + 1, timeout=30))["state"] == "ready"
        s.open(URI, "def f():\n    \n")
        assert isinstance(await s.inline(URI, 1, 4), list)


async def test_memory_policy_shrink_loads_a_smaller_context(qwen_gguf: Path) -> None:
    # 660 MB allows the weights (~470 MB) + overhead but not an 8K KV cache: shrink, don't refuse.
    faults = ("--memory-limit-mb", "660")
    async with lsp_session("neovim", {"model": str(qwen_gguf), "memoryPolicy": "shrink"},
                           faults=faults) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        warning = await s.wait_message(types.MessageType.Warning)
        assert "memoryPolicy = shrink" in warning.message
    async with lsp_session("neovim", {"model": str(qwen_gguf)}, faults=faults) as s:
        st = await s.wait_status("ready", "error")
        assert st["state"] == "error" and "memoryPolicy" in st["message"], st


async def test_switching_models_reports_progress(tiny_starcoder: Path, tiny_starcoder2: Path
                                                 ) -> None:
    async with lsp_session("visual-studio-code", {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        tokens_before = len(s.client.progress_reports)
        n = len(s.statuses)
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"model": str(tiny_starcoder2), "threads": 1}}))
        await s.wait_status("loading", after=n)
        st = await s.wait_status("ready", "error", after=n + 1)
        assert st["state"] == "ready" and "tiny-starcoder2" in st["message"], st
        for _ in range(50):
            if len(s.client.progress_reports) > tokens_before:
                break
            await asyncio.sleep(0.05)
        assert len(s.client.progress_reports) > tokens_before
