"""The tests' end-to-end LSP session: the real server over stdio, driven by pytest-lsp's client.

`lsp_session` starts `python -m lsp_server serve` through `lsp_server.driver` and initialises it
with the capabilities of a real editor preset (`visual-studio-code` or `neovim`), plus inline
completion, which the presets do not declare. pytest-lsp's client (rather than the driver's plain
one) answers `workspace/configuration` from `set_configuration`, records progress and shown
documents, and checks what the server sends against the declared capabilities.
Used by tests/ (through conftest) and `benchmarks/loop_lag.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import client_capabilities
from pytest_lsp.client import make_test_lsp_client

from lsp_server.driver.session import Driver, inline_capabilities

PRESETS = ["visual-studio-code", "neovim"]

Session = Driver  # what the tests call a running server and what it has told the client
STREAM_POLL_S = 0.05  # checks for a command's streamed text: well under a token's time


async def wait_streaming(s: Session, before: set[Any], answer: asyncio.Future[Any],
                         timeout: float = 60.0) -> bool:
    """Wait until a work-done progress begun after `before` (the tokens known then) reports text,
    i.e. a command (explain, edit) is writing its answer, or `answer` arrives. True when it was
    writing and not yet answered: the moment to cancel it."""
    reports = s.client.progress_reports  # type: ignore[attr-defined]

    def writing() -> bool:
        return any(any(isinstance(r, types.WorkDoneProgressReport) and r.message for r in rs)
                   for t, rs in reports.items() if t not in before)
    deadline = time.monotonic() + timeout
    while not (writing() or answer.done()) and time.monotonic() < deadline:
        await asyncio.sleep(STREAM_POLL_S)
    return writing() and not answer.done()


def capabilities(preset: str, *, inline: bool = True) -> types.ClientCapabilities:
    caps = client_capabilities(preset)
    return inline_capabilities(caps) if inline else caps


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
    root_uri: str | None = None,
    workspace_folders: list[types.WorkspaceFolder] | None = None,
) -> AsyncIterator[Driver]:
    """Start `starcoder-lsp serve -v` over stdio, initialise it as `preset` would, yield the
    driver; at the end shutdown (unless the test sent it) and exit, and the process must end.

    The workspace is the current directory unless `root_uri` / `workspace_folders` say otherwise.
    `faults` (e.g. `("--load-delay", "3")`) runs it through `tests.faulty_server`.
    """
    program = ("-m", "tests.faulty_server", *faults) if faults else ("-m", "lsp_server")
    client = make_test_lsp_client()
    # pytest-lsp forwards the server's stderr to the test's own: the driver must not read it.
    session = await Driver.launch(client, args=("-v", *args), env=env or {}, drain_stderr=False,
                                   program=program)
    if configuration is not None:
        client.set_configuration(item=configuration, section="starcoder")
    try:
        session.result = await client.initialize_session(types.InitializeParams(
            capabilities=capabilities(preset, inline=inline),
            initialization_options=init_options or {},
            root_uri=root_uri or Path.cwd().as_uri(),
            workspace_folders=workspace_folders,
        ))
        yield session
    finally:
        await session.end(strict=True)
