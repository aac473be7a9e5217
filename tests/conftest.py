"""Shared fixtures: tiny StarCoder GGUFs, the real Qwen model, and LSP sessions over stdio.

`lsp_session` (testkit.sessions) starts the real server (`python -m lsp_server serve`) as a
subprocess and drives it with pytest-lsp's client through `lsp_server.driver`, initialised with
the capabilities of a real editor preset (`visual-studio-code` or `neovim`) plus inline completion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit.sessions import PRESETS, Session, capabilities, lsp_session
from testkit.tiny_models import write_tiny_starcoder, write_tiny_starcoder2
from tests.conftest_models import *  # noqa: F403  (qwen_gguf, smollm2_gguf)

__all__ = ["PRESETS", "Session", "SessionFactory", "capabilities", "lsp_session"]


@pytest.fixture(scope="session")
def tiny_starcoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_starcoder(tmp_path_factory.mktemp("tiny") / "tiny-starcoder.gguf")


@pytest.fixture(scope="session")
def tiny_starcoder2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_starcoder2(tmp_path_factory.mktemp("tiny2") / "tiny-starcoder2.gguf")


@pytest.fixture(params=PRESETS)
def preset(request: pytest.FixtureRequest) -> str:
    return str(request.param)


SessionFactory = Callable[..., contextlib.AbstractAsyncContextManager[Session]]


@pytest.fixture
def session_factory() -> SessionFactory:
    return lsp_session
