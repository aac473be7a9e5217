"""The LSP face of starcoder-lsp: params in, results out, nothing else.

The server object holds the session's state and plumbing (status, messages, progress, secrets);
the handlers live in one module per feature (`session`, `completion`, `explain`), each with a
`setup` that `create_server` calls: the one place that wires them. The pipelines live in
`lsp_server.pipelines`. Every request answers promptly: before the model is ready, or on any failure,
an inline completion answers with no items (never blocks, never errors) and the status says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from lsp_server import __version__, defaults
from lsp_server.context.secrets import SecretPolicy, off_message
from lsp_server.context.snippets import RecentDocuments
from lsp_server.engine.model import load_model
from lsp_server.lifecycle import Loader
from lsp_server.protocol import rpc, uris
from lsp_server.protocol.documents import BoundedDocuments
from lsp_server.protocol.failures import Failures
from lsp_server.protocol.lag import LoopLag, settle_heap
from lsp_server.protocol.logs import stop_forwarding
from lsp_server.protocol.requests import folders, is_context, source_doc
from lsp_server.service import Assistant
from lsp_server.settings import Settings
from lsp_server.tasks import TaskSet

log = logging.getLogger(__name__)

STATUS_METHOD = "starcoder/status"
DOCUMENT_STATUS_METHOD = "starcoder/documentStatus"


class StarcoderProtocol(BoundedDocuments):
    """pygls' protocol made robust (`rpc`, `documents`), keeping a closed buffer's text before
    pygls drops it (cross-file context)."""

    _server: StarcoderServer

    def handle_message(self, message: Any) -> None:
        self._server.lag.poke(getattr(message, "method", None) or "response")
        super().handle_message(message)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        doc = self.open_document(params.text_document.uri)
        if doc is not None and is_context(doc):
            self._server.recent.remember(source_doc(doc, folders(self._server)))
        yield from super().lsp_text_document__did_close(params)


class StarcoderServer(LanguageServer):
    """Holds the assistant, the settings and references to background tasks."""

    def __init__(self, settings: Settings, *, loader: Loader = load_model,
                 naive: bool = False) -> None:
        super().__init__(defaults.SERVER_NAME, __version__, protocol_cls=StarcoderProtocol)
        self.cli_settings = settings
        self.assistant = Assistant(settings, self.send_status, self.show_warning, loader=loader,
                                   naive=naive)
        self.background = TaskSet()
        self.last_status: dict[str, str] = {}
        self.recent = RecentDocuments()
        self.lag = LoopLag()
        self.heap_settled = False
        self.failures = Failures()
        self.protocol.on_too_large = self.show_warning
        self.protocol.secret_reason = self.secret_reason
        self.protocol.on_secret = self.tell_secret
        self._secrets: SecretPolicy | None = None

    protocol: StarcoderProtocol

    # --- transport: our framing (`rpc`) instead of pygls' reader loop ------------------------------
    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        rpc.serve_stdio(self, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)

    async def aclose(self) -> None:
        """End this session (a network client left): stop its work and free its model."""
        self.background.cancel_all()
        stop_forwarding(self)
        await self.assistant.aclose()
        self.shutdown()

    # --- secrets (context.secrets decides; documents.py keeps their text out) --------------------
    def secret_reason(self, uri: str, path: str | None, language: str) -> str | None:
        s = self.assistant.settings
        known = folders(self) if self.protocol._workspace is not None else []
        roots = tuple(dict.fromkeys(p for p in (to_fs_path(f.uri) for f in known) if p))
        policy = self._secrets
        if policy is None or (policy.exclude, policy.gitignore, policy.roots) != (
                s.exclude, s.gitignore, roots):
            policy = self._secrets = SecretPolicy(s.exclude, s.gitignore, roots)
        return policy.reason(uri, path, language)

    def tell_secret(self, uri: str, reason: str) -> None:
        """Once per document: the per-document status, and a message every client shows."""
        name = uris.display_path(uri, folders(self))
        with contextlib.suppress(Exception):
            self.protocol.notify(DOCUMENT_STATUS_METHOD, {
                "uri": uri, "completions": "off", "reason": reason,
                "message": off_message(name, reason)})
            self.window_show_message(types.ShowMessageParams(
                types.MessageType.Info, f"starcoder-lsp: {off_message(name, reason)}"))

    def recheck_secrets(self) -> None:
        """Settings changed (`exclude`, `gitignore`): apply them to the open documents."""
        for uri in self.protocol.recheck_secrets():
            self.show_warning(f"{uris.display_path(uri, folders(self))} is no longer excluded: reopen it "
                              "to get completions (its text was never kept)")

    # --- plumbing ---------------------------------------------------------------------------------
    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run `coro` in the background, keep a reference, and log (not lose) its exception."""
        return self.background.spawn(coro)

    def send_status(self, state: str, model: str, message: str) -> None:
        self.last_status = {"state": state, "model": model, "message": message}
        self._notify_status()
        if state == "error":
            try:
                self.window_show_message(
                    types.ShowMessageParams(types.MessageType.Error, f"starcoder-lsp: {message}")
                )
            except Exception:  # no client connected yet (e.g. in-process use)
                log.debug("message not sent", exc_info=True)

    def _notify_status(self) -> None:
        """The last status with the current failure count (`errors`, `lastError`)."""
        try:
            self.protocol.notify(STATUS_METHOD, {**self.last_status,
                                                 **self.failures.status_fields()})
        except Exception:  # no client connected yet (e.g. in-process use)
            log.debug("status not sent", exc_info=True)

    def request_failed(self, what: str, exc: BaseException) -> None:
        """An internal failure: counted, logged once per cause, and shown in the status."""
        self.failures.failed(what, exc)
        if self.last_status:
            self._notify_status()

    def request_succeeded(self, what: str) -> None:
        if self.failures.succeeded(what) and self.last_status:
            self._notify_status()

    def show_warning(self, text: str) -> None:
        self.window_show_message(
            types.ShowMessageParams(types.MessageType.Warning, f"starcoder-lsp: {text}"))

    def show_problems(self, problems: list[str]) -> None:
        for text in problems:
            log.warning("%s", text)
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Warning, f"starcoder-lsp: {text}")
            )

    def supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    def supports_configuration(self) -> bool:
        ws = self.client_capabilities.workspace
        return bool(ws and ws.configuration)

    async def pull_configuration(self) -> Any:
        """The `starcoder` section from the client, or None (kept off the completion path)."""
        if not self.supports_configuration():
            return None
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(
                    items=[types.ConfigurationItem(section=defaults.SETTINGS_SECTION)])),
                timeout=defaults.CLIENT_REQUEST_TIMEOUT_S,
            )
        except Exception:
            log.warning("workspace/configuration failed; keeping current settings", exc_info=True)
            return None
        return result[0] if result else None

    async def begin_progress(self, kind: str, title: str, message: str,
                             on_cancel: Callable[[], None] | None = None) -> str | None:
        """Start a server-initiated `$/progress` (None when the client does not support it)."""
        if not self.supports_progress():
            return None
        token = f"starcoder-{kind}-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token),
                                   timeout=defaults.CLIENT_REQUEST_TIMEOUT_S)
            if on_cancel is not None:
                self.work_done_progress.tokens[token].add_done_callback(lambda _: on_cancel())
            self.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title=title, message=message, cancellable=on_cancel is not None))
        except Exception:
            log.debug("progress not available", exc_info=True)
            return None
        return token

    async def load_with_progress(self) -> None:
        """Load the model, with `$/progress` when the client supports it."""
        token = await self.begin_progress("load", "starcoder-lsp",
                                          f"Loading {self.assistant.settings.model}")
        try:
            await self.assistant.load()
        finally:
            if token is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(
                    message=self.assistant.state))
        if not self.heap_settled:  # once, after the first load: before the user types
            self.heap_settled = True
            settle_heap()


def create_server(settings: Settings | None = None, *, loader: Loader = load_model,
                  naive: bool = False) -> StarcoderServer:
    """Build the server and wire every feature: the one place that knows which exist."""
    from lsp_server.protocol import actions, completion, edit, explain, session  # (they import
    # this module)

    server = StarcoderServer(settings or Settings(), loader=loader, naive=naive)
    for feature in (session, completion, actions, explain, edit):
        feature.setup(server)
    return server
