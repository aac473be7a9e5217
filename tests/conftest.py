"""Shared fixtures: tiny StarCoder GGUFs, the real Qwen model, and LSP sessions over stdio.

`lsp_session` starts the real server (`python -m lsp_server serve`) as a subprocess and drives it
with pytest-lsp's client, initialised with the capabilities of a real editor preset
(`visual-studio-code` or `neovim`), plus inline completion, which the presets do not declare.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp_server.demo import fix_code_action_union
from tests.conftest_models import *  # noqa: F403  (qwen_gguf, smollm2_gguf)
from tests.tiny_models import write_tiny_starcoder, write_tiny_starcoder2

PRESETS = ["visual-studio-code", "neovim"]


@pytest.fixture(scope="session")
def tiny_starcoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_starcoder(tmp_path_factory.mktemp("tiny") / "tiny-starcoder.gguf")


@pytest.fixture(scope="session")
def tiny_starcoder2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_starcoder2(tmp_path_factory.mktemp("tiny2") / "tiny-starcoder2.gguf")


@pytest.fixture(params=PRESETS)
def preset(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def capabilities(preset: str, *, inline: bool = True) -> types.ClientCapabilities:
    caps = client_capabilities(preset)
    if inline:
        if caps.text_document is None:
            caps.text_document = types.TextDocumentClientCapabilities()
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


@dataclass
class Session:
    """A running server and what it has told the client."""

    client: LanguageClient
    statuses: list[dict[str, Any]] = field(default_factory=list)
    result: types.InitializeResult | None = None
    shut_down: bool = False  # the test sent `shutdown` itself

    async def wait_status(self, *states: str, timeout: float = 120.0,
                          after: int = 0) -> dict[str, Any]:
        """The first status (from index `after`) whose state is one of `states`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for st in self.statuses[after:]:
                if st["state"] in states:
                    return st
            await asyncio.sleep(0.02)
        raise AssertionError(f"no status in {states} within {timeout}s; got {self.statuses}")

    async def wait_message(self, kind: types.MessageType, timeout: float = 10.0
                           ) -> types.ShowMessageParams:
        """The first window/showMessage of `kind` (they may trail the status notification)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for m in self.client.messages:
                if m.type == kind:
                    return m
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {kind} message within {timeout}s; got {self.client.messages}")

    async def stats(self) -> dict[str, Any]:
        """The server's `starcoder/stats` counters."""
        return _fields(await self.client.protocol.send_request_async("starcoder/stats", {}))

    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))

    async def inline(self, uri: str, line: int, character: int) -> list[types.InlineCompletionItem]:
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri),
                position=types.Position(line, character),
                context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
            ))
        if result is None:
            return []
        return list(result.items if isinstance(result, types.InlineCompletionList) else result)


def _fields(params: Any) -> dict[str, Any]:
    """A JSON object pygls handed over as a dict or as a namedtuple-like object."""
    if isinstance(params, dict):
        return params
    return {k: getattr(params, k) for k in params._fields}


def _status_params(params: Any) -> dict[str, Any]:
    fields = _fields(params)
    return {"state": None, "model": None, "message": None, **fields}


@contextlib.asynccontextmanager
async def lsp_session(
    preset: str,
    init_options: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    faults: tuple[str, ...] = (),
    configuration: dict[str, Any] | None = None,
    inline: bool = True,
    tmp_cache: Path | None = None,
    root_uri: str | None = None,
    workspace_folders: list[types.WorkspaceFolder] | None = None,
) -> AsyncIterator[Session]:
    """Start `starcoder-lsp serve` over stdio, initialise it as `preset` would, yield a Session.

    The workspace is the current directory unless `root_uri` / `workspace_folders` say otherwise.
    `faults` (e.g. `("--load-delay", "3")`) runs it through `tests.faulty_server`.
    """
    server_env = {**os.environ, **(env or {})}  # pytest-lsp replaces the whole environment
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "tests.faulty_server" if faults else "lsp_server",
                        *faults, "serve", "-v", *args],
        server_env=server_env,
    )
    client = await config.start()
    fix_code_action_union(client)
    session = Session(client)
    if configuration is not None:
        client.set_configuration(item=configuration, section="starcoder")

    @client.feature("starcoder/status")
    def on_status(params: Any) -> None:
        session.statuses.append(_status_params(params))

    session.result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(preset, inline=inline),
        initialization_options=init_options or {},
        root_uri=root_uri or Path.cwd().as_uri(),
        workspace_folders=workspace_folders,
    ))
    try:
        yield session
    finally:
        # shutdown (unless the test did), then always exit, as editors do.
        if not session.shut_down:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown_async(None), timeout=30)
        with contextlib.suppress(Exception):
            client.exit(None)
        proc = client._server
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                raise AssertionError("the server did not exit within 30 s of `exit`") from None
        await client.stop()


SessionFactory = Callable[..., contextlib.AbstractAsyncContextManager[Session]]


@pytest.fixture
def session_factory() -> SessionFactory:
    return lsp_session
