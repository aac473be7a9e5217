"""Every bad-model case leaves the server running, says why, and answers requests with no items.

Missing file, truncated file, not a GGUF, unsupported architecture, no FIM tokens (SmolLM2, a real
model), and not enough memory. After each, switching to a good model recovers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf
import pytest
from lsprotocol import types

from testkit.tiny_models import STARCODER_SPECIAL_TOKENS
from tests.conftest import lsp_session

URI = "file:///tmp/starcoder-test/bad.py"


def unsupported_arch(path: Path) -> Path:
    """A well-formed GGUF whose architecture llama.cpp does not know (with StarCoder's FIM vocab)."""
    w = gguf.GGUFWriter(str(path), "nosucharch")
    w.add_tokenizer_model("gpt2")
    w.add_token_list([*STARCODER_SPECIAL_TOKENS, "a", "b"])
    w.add_token_types([gguf.TokenType.CONTROL] * len(STARCODER_SPECIAL_TOKENS)
                      + [gguf.TokenType.NORMAL] * 2)
    w.add_context_length(1024)
    w.add_tensor("token_embd.weight", __import__("numpy").zeros((4, 8), dtype="float32"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


async def assert_reported(model: str, expect: str, good: Path, faults: tuple[str, ...] = ()
                          ) -> None:
    async with lsp_session("visual-studio-code", {"model": model}, faults=faults) as s:
        st = await s.wait_status("ready", "error")
        assert st["state"] == "error", st
        assert expect.lower() in st["message"].lower(), st["message"]
        shown = await s.wait_message(types.MessageType.Error)
        assert expect.lower() in shown.message.lower()
        s.open(URI, "def f():\n    \n")
        assert await s.inline(URI, 1, 4) == []  # still answering
        n = len(s.statuses)
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"starcoder": {"model": str(good), "threads": 1}}))
        assert (await s.wait_status("ready", "error", after=n))["state"] == "ready"


async def test_missing_file(tmp_path: Path, tiny_starcoder: Path) -> None:
    await assert_reported(str(tmp_path / "nope.gguf"), "not found", tiny_starcoder)


async def test_not_a_gguf(tmp_path: Path, tiny_starcoder: Path) -> None:
    path = tmp_path / "readme.gguf"
    path.write_text("this is not a model\n" * 100)
    await assert_reported(str(path), "GGUF", tiny_starcoder)


async def test_truncated_file(tmp_path: Path, tiny_starcoder: Path, qwen_gguf: Path) -> None:
    path = tmp_path / "truncated.gguf"
    with qwen_gguf.open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(50 * 1024 * 1024))
    await assert_reported(str(path), "truncated", tiny_starcoder)


async def test_unsupported_architecture(tmp_path: Path, tiny_starcoder: Path) -> None:
    path = unsupported_arch(tmp_path / "weird.gguf")
    await assert_reported(str(path), "nosucharch", tiny_starcoder)


async def test_no_fim_tokens_real_model(tmp_path: Path, tiny_starcoder: Path,
                                        smollm2_gguf: Path) -> None:
    path = tmp_path / "smollm2.gguf"
    shutil.copy(smollm2_gguf, path)
    await assert_reported(str(path), "FIM", tiny_starcoder)


async def test_not_enough_memory(tiny_starcoder: Path, qwen_gguf: Path) -> None:
    # The memory check counts weights + KV cache against what is available (capped here).
    await assert_reported(str(qwen_gguf), "not enough memory", tiny_starcoder,
                          faults=("--memory-limit-mb", "300"))


@pytest.mark.parametrize("name", ["no-such-model"])
async def test_unknown_catalogue_name(name: str, tiny_starcoder: Path) -> None:
    await assert_reported(name, "unknown model", tiny_starcoder)
