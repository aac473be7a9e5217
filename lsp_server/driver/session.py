"""One server process driven as an editor drives it: `python -m lsp_server serve` over stdio.

The demo, the benchmarks and the end-to-end tests measure or show what an editor gets, so they
never call the pipeline in-process: they start the real server, initialise it, wait for
`starcoder/status`, and send the requests an editor sends. `Driver` wraps any pygls client —
a plain one (`start_server`: demo, benchmarks) or pytest-lsp's, which also checks the server
against the client's capabilities (the tests' `testkit.sessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.protocol import LanguageServerProtocol

from lsp_server import defaults
from lsp_server.driver.editor import item_text

StatusListener = Callable[[dict[str, Any]], None]
# The states after which a load is over, for better or worse.
SETTLED = ("ready", "error", "disabled")


def fix_code_action_union(client: Any) -> None:
    """Parse `Command | CodeAction` results as editors do.

    lsprotocol's client-side hook reads any object with a `command` key as a Command, so a
    CodeAction that carries a command (what this server sends) would be mis-parsed; editors check
    whether `command` is a string, and so does this.
    """
    conv = client.protocol._converter

    def hook(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return conv.structure(obj, types.Command)
        return conv.structure(obj, types.CodeAction)

    conv.register_structure_hook(Union[types.Command, types.CodeAction], hook)  # noqa: UP007


def inline_capabilities(caps: types.ClientCapabilities | None = None) -> types.ClientCapabilities:
    """`caps` (an editor preset's; by default none but document sync) plus inline completion,
    which pytest-lsp's presets do not declare and the server checks for."""
    if caps is None:
        caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities()))
    if caps.text_document is None:
        caps.text_document = types.TextDocumentClientCapabilities()
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


def _fields(params: Any) -> dict[str, Any]:
    """A JSON object pygls handed over as a dict or as a namedtuple-like object."""
    if isinstance(params, dict):
        return params
    return {k: getattr(params, k) for k in params._fields}


@dataclass
class InlineResult:
    item: types.InlineCompletionItem | None
    elapsed_s: float

    @property
    def text(self) -> str:
        return item_text(self.item) if self.item is not None else ""


class Driver:
    """A running server and what it has told the client (statuses, shown messages)."""

    def __init__(self, client: LanguageClient, *, on_status: StatusListener | None = None) -> None:
        self.client = client
        self.statuses: list[dict[str, Any]] = []
        self.result: types.InitializeResult | None = None
        self.shut_down = False  # the caller sent `shutdown` itself
        self._on_status = on_status
        self._changed = asyncio.Event()
        self._drain: asyncio.Task[None] | None = None
        self._sink: IO[bytes] | None = None
        kept = getattr(client, "messages", None)  # pytest-lsp's client records them itself
        self.messages: list[types.ShowMessageParams] = kept if isinstance(kept, list) else []
        fix_code_action_union(client)
        # pygls marks each handler with attributes: plain functions, not bound methods.

        @client.feature("starcoder/status")
        def status(params: Any) -> None:
            self._status(params)

        if not isinstance(kept, list):

            @client.feature(types.WINDOW_SHOW_MESSAGE)
            def on_show(params: types.ShowMessageParams) -> None:
                self.messages.append(params)

            @client.feature(types.WINDOW_LOG_MESSAGE)
            def on_log(params: types.LogMessageParams) -> None:
                """The server's log file has these; an editor puts them in its log panel."""

    def _status(self, params: Any) -> None:
        status = {"state": None, "model": None, "message": None, **_fields(params)}
        self.statuses.append(status)
        self._changed.set()
        if self._on_status is not None:
            self._on_status(status)

    @classmethod
    async def launch(cls, client: LanguageClient, *, model: str | None = None,
                     args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                     log_path: Path | None = None, drain_stderr: bool = True,
                     on_status: StatusListener | None = None,
                     program: Sequence[str] = ("-m", "lsp_server")) -> Driver:
        """Start `python -m lsp_server serve [--model MODEL] ARGS` under `client` (not yet
        initialised). `env` is added to this process's environment. The server's stderr is read
        into `log_path` (appended) or dropped — an unread pipe fills up and blocks the server —
        unless `drain_stderr` is off because the client reads it itself (pytest-lsp does).
        `program`: what runs (tests run their fault-injecting entry point)."""
        driver = cls(client, on_status=on_status)
        cmd = [*program, "serve", *(["--model", model] if model else []), *args]
        kwargs = {"env": {**os.environ, **env}} if env is not None else {}
        await client.start_io(sys.executable, *cmd, **kwargs)
        proc = client._server
        if drain_stderr and proc is not None and proc.stderr is not None:
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                driver._sink = log_path.open("ab")  # several sessions may share one log
            driver._drain = asyncio.create_task(_drain(proc.stderr, driver._sink))
        return driver

    async def initialize(self, params: types.InitializeParams,
                         timeout: float = defaults.DRIVER_READY_TIMEOUT_S) -> types.InitializeResult:
        """`initialize`, then `initialized`, as an editor starts a session."""
        self.result = await asyncio.wait_for(self.client.initialize_async(params), timeout)
        self.client.initialized(types.InitializedParams())
        return self.result

    @property
    def pid(self) -> int:
        assert self.client._server is not None
        return self.client._server.pid

    # --- what the server said -----------------------------------------------------------------
    async def wait_status(self, *states: str, timeout: float = defaults.DRIVER_STATUS_TIMEOUT_S,
                          after: int = 0) -> dict[str, Any]:
        """The first status (from index `after`) whose state is one of `states`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for st in self.statuses[after:]:
                if st["state"] in states:
                    return st
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no status in {states} within {timeout}s; got {self.statuses}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def wait_ready(self, timeout: float = defaults.DRIVER_READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait for status `ready`; raise with the server's message on `error`/`disabled`."""
        st = await self.wait_status(*SETTLED, timeout=timeout)
        if st["state"] != "ready":
            raise RuntimeError(f"server is {st['state']}: {st['message']}")
        return st

    async def wait_message(self, kind: types.MessageType,
                           timeout: float = defaults.DRIVER_MESSAGE_TIMEOUT_S
                           ) -> types.ShowMessageParams:
        """The first window/showMessage of `kind` (they may trail the status notification)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for m in self.messages:
                if m.type == kind:
                    return m
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {kind} message within {timeout}s; got {self.messages}")

    async def stats(self) -> dict[str, Any]:
        """The server's `starcoder/stats` counters."""
        return _fields(await self.client.protocol.send_request_async("starcoder/stats", {}))

    # --- documents ------------------------------------------------------------------------------
    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))

    def change(self, uri: str, version: int, range_: types.Range, text: str) -> None:
        """One incremental edit (replace `range_` by `text`)."""
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangePartial(range=range_, text=text)]))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(uri)))

    # --- requests ------------------------------------------------------------------------------
    async def inline(self, uri: str, line: int, character: int,
                     timeout: float = defaults.DRIVER_REQUEST_TIMEOUT_S, *, invoked: bool = False
                     ) -> list[types.InlineCompletionItem]:
        """The inline items at a typing pause (trigger Automatic), or asked for by the user
        (`invoked`: the editor's "trigger suggestion" key)."""
        kind = (types.InlineCompletionTriggerKind.Invoked if invoked
                else types.InlineCompletionTriggerKind.Automatic)
        result = await asyncio.wait_for(self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri),
                position=types.Position(line, character),
                context=types.InlineCompletionContext(kind),
            )), timeout)
        if result is None:
            return []
        return list(result.items if isinstance(result, types.InlineCompletionList) else result)

    async def inline_item(self, uri: str, line: int, character: int,
                          timeout: float = defaults.DRIVER_REQUEST_TIMEOUT_S) -> InlineResult:
        """The first inline item at a typing pause, and the round trip."""
        t0 = time.perf_counter()
        items = await self.inline(uri, line, character, timeout)
        return InlineResult(items[0] if items else None, time.perf_counter() - t0)

    async def inline_whole(self, uri: str, line: int, character: int,
                           timeout: float = defaults.DRIVER_REQUEST_TIMEOUT_S) -> InlineResult:
        """The whole suggestion at a pause, as a user who waits sees it: when the server answered
        with the lines it had (its time box), asked again at the same place until the block has
        landed. The round trip is the first answer's."""
        before = (await self.stats()).get("earlyAnswers", 0)
        first = await self.inline_item(uri, line, character, timeout)
        if (await self.stats()).get("earlyAnswers", 0) == before:
            return first
        result = first
        for _ in range(int(timeout / defaults.DRIVER_POLL_S)):
            await asyncio.sleep(defaults.DRIVER_POLL_S)
            joined = (await self.stats()).get("joined", 0)
            result = await self.inline_item(uri, line, character, timeout)
            if (await self.stats()).get("joined", 0) == joined:  # from the cache: landed
                break
        return InlineResult(result.item, first.elapsed_s)

    async def code_actions(self, uri: str, range_: types.Range
                           ) -> list[types.Command | types.CodeAction]:
        result = await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri), range=range_,
            context=types.CodeActionContext(diagnostics=[])))
        return list(result or [])

    async def execute(self, command: types.Command) -> Any:
        """Run a command as the editor does when the user picks its code action."""
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command.command, arguments=command.arguments))

    # --- the end -------------------------------------------------------------------------------
    async def end(self, *, strict: bool = False) -> None:
        """shutdown (unless the caller sent it) and exit, as editors do, then wait for the
        process; one that hangs is killed — and, when `strict`, reported (AssertionError)."""
        wait = defaults.DRIVER_SHUTDOWN_TIMEOUT_S
        if not self.shut_down:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.shutdown_async(None), wait)
        with contextlib.suppress(Exception):
            self.client.exit(None)
        hung = False
        proc = self.client._server
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), wait)
            except TimeoutError:
                proc.kill()
                hung = True
        try:
            if strict and not hung:
                await self.client.stop()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.client.stop(), wait)
            if self._drain is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._drain, 5)
        finally:
            if self._sink is not None:
                self._sink.close()
        if hung and strict:
            raise AssertionError(f"the server did not exit within {wait:.0f} s of `exit`")


async def _drain(stream: asyncio.StreamReader, sink: IO[bytes] | None) -> None:
    """Read the server's log output (pygls pipes stderr and never reads it)."""
    while chunk := await stream.read(65536):
        if sink is not None:
            sink.write(chunk)
            sink.flush()


class _ClientProtocol(LanguageServerProtocol):
    """pygls' client protocol, quiet about the answer to a request the driver cancelled (a
    superseded keystroke's): pygls sets the result on the cancelled future and prints the
    InvalidStateError's traceback for each one."""

    def _handle_response(self, msg_id: Any, result: Any | None = None,
                         error: Any | None = None) -> None:
        futures = getattr(self, "_request_futures", {})  # pygls' private map (pinned by a test)
        future = futures.get(msg_id)
        if future is not None and future.cancelled():
            del futures[msg_id]
            return
        super()._handle_response(msg_id, result, error)


@contextlib.asynccontextmanager
async def start_server(
    model: str | None = None,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    capabilities: types.ClientCapabilities | None = None,
    init_options: dict[str, Any] | None = None,
    root: Path | None = None,
    log_path: Path | None = None,
    on_status: StatusListener | None = None,
) -> AsyncIterator[Driver]:
    """Start the server under a plain pygls client, initialise it like an editor with inline
    completion (`capabilities`: by default only that and document sync), and yield the driver
    (not yet waited for `ready`); shut it down on the way out."""
    driver = await Driver.launch(LanguageClient("starcoder-lsp-driver", "0",
                                                protocol_cls=_ClientProtocol), model=model,
                                 args=args, env=env, log_path=log_path, on_status=on_status)
    try:
        await driver.initialize(types.InitializeParams(
            capabilities=inline_capabilities(capabilities), process_id=None,
            initialization_options=init_options or {}, root_uri=(root or Path.cwd()).as_uri()))
        yield driver
    finally:
        await driver.end()
