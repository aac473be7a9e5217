"""One session at a time over a network connection: the first message checked, then a fresh
server for the client until it leaves, and the next client after that.

Stream connections (TCP, Unix socket) are framed like stdio; a WebSocket carries one JSON-RPC
message per WebSocket message. The checks themselves are `protocol.auth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lsp_server import defaults
from lsp_server.protocol import rpc
from lsp_server.protocol.auth import BUSY, UNAUTHORIZED, check_first, error_frame, speaks_lsp

log = logging.getLogger(__name__)


class Session(Protocol):
    """What a listener needs from a server: its protocol, and a way to end it cleanly."""

    @property
    def protocol(self) -> rpc.RobustProtocol: ...

    async def aclose(self) -> None: ...


@dataclass
class Listener:
    """Accepts connections, checks each one's first message, runs one session at a time."""

    make_server: Callable[[], Session]
    token: str | None
    active: Session | None = None
    pending: int = 0  # connections not yet past the first-message check
    sessions: int = 0  # sessions served (for logs and tests)

    async def _free(self) -> bool:
        """Whether no session runs, waiting briefly: an editor that reconnects at once may arrive
        before its old connection's end has been read."""
        deadline = asyncio.get_running_loop().time() + defaults.SESSION_HANDOVER_S
        while self.active is not None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return self.active is None

    def _admit(self) -> bool:
        if self.pending >= defaults.MAX_PENDING_CONNECTIONS:
            log.warning("refused a connection: %d others are still being checked", self.pending)
            return False
        self.pending += 1
        return True

    async def _first_body(self, read: Callable[[], Awaitable[bytes]]
                          ) -> tuple[bytes, rpc.FrameParser] | None:
        """The first framed message, or None (HTTP, garbage, too big, too slow, EOF)."""
        parser = rpc.FrameParser(max_body=defaults.PREAUTH_MAX_BYTES)
        start, decided = b"", False
        async with asyncio.timeout(defaults.AUTH_TIMEOUT_S):
            while True:
                data = await read()
                if not data:
                    return None
                if not decided:
                    start = (start + data).lstrip(b"\r\n")[:32]
                    verdict = speaks_lsp(start)
                    if verdict is False:
                        log.warning("refused a connection that does not speak LSP: %r", start[:20])
                        return None
                    decided = verdict is True
                for body in parser.feed(data):
                    parser.max_body = defaults.MAX_MESSAGE_BYTES
                    return body, parser
                if parser.errors:
                    log.warning("refused a connection with broken framing before initialize")
                    return None

    async def stream_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        """A TCP or Unix-socket client, framed like stdio."""
        if not self._admit():
            writer.close()
            return

        async def read() -> bytes:
            return await reader.read(defaults.READ_CHUNK_BYTES)

        try:
            try:
                first = await self._first_body(read)
            except (TimeoutError, OSError):
                first = None
            finally:
                self.pending -= 1
            if first is None:
                return
            body, parser = first
            verdict = check_first(body, self.token)
            if not verdict.ok or not await self._free():
                code, reason = ((UNAUTHORIZED, verdict.reason) if not verdict.ok else
                                (BUSY, "starcoder-lsp: another editor is connected to this "
                                       "listener (one session at a time)"))
                log.warning("refused a client: %s", reason)
                with contextlib.suppress(OSError):
                    writer.write(error_frame(verdict.msg_id, code, reason, headers=True))
                    await writer.drain()
                return
            await self._run(verdict.body, parser, read, writer, writer.close, headers=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def ws_connection(self, websocket: Any) -> None:
        """A WebSocket client (Origin and Host were checked during the handshake): one JSON-RPC
        message per WebSocket message, as pygls' and the browser clients' convention is."""
        if not self._admit():
            await websocket.close(1013, "too many connections being checked")
            return
        try:
            try:
                async with asyncio.timeout(defaults.AUTH_TIMEOUT_S):
                    first = await websocket.recv()
            except Exception:
                return
            finally:
                self.pending -= 1
            data = first.encode("utf-8") if isinstance(first, str) else bytes(first)
            if len(data) > defaults.PREAUTH_MAX_BYTES:
                return
            verdict = check_first(data, self.token)
            if not verdict.ok or not await self._free():
                reason = verdict.reason if not verdict.ok else (
                    "starcoder-lsp: another editor is connected to this listener")
                log.warning("refused a WebSocket client: %s", reason)
                with contextlib.suppress(Exception):
                    await websocket.send(error_frame(
                        verdict.msg_id, UNAUTHORIZED if not verdict.ok else BUSY, reason,
                        headers=False).decode())
                return

            # The token holds: full-size messages from now on (websockets ≥ 15 names it
            # max_message_size, earlier versions max_size).
            limits = websocket.protocol
            name = "max_message_size" if hasattr(limits, "max_message_size") else "max_size"
            setattr(limits, name, defaults.MAX_MESSAGE_BYTES)

            async def read() -> bytes:
                try:
                    message = await websocket.recv()
                except Exception:  # closed, or a message over the size limit
                    return b""
                raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
                return b"Content-Length: %d\r\n\r\n" % len(raw) + raw

            await self._run(verdict.body, rpc.FrameParser(), read, _WsWriter(websocket),
                            lambda: asyncio.ensure_future(websocket.close()), headers=False)
        finally:
            with contextlib.suppress(Exception):
                await websocket.close()

    async def _run(self, first: bytes, parser: rpc.FrameParser, read: Callable[[], Awaitable[bytes]],
                   writer: Any, close: Callable[[], Any], *, headers: bool) -> None:
        """One session: a fresh server, its first message, then everything else until EOF/exit."""
        server = self.make_server()
        self.active = server
        self.sessions += 1
        stop = threading.Event()
        protocol = server.protocol

        def end() -> None:
            stop.set()
            close()

        protocol.on_exit = end
        protocol.set_writer(writer, include_headers=headers)
        log.info("session %d started", self.sessions)
        try:
            protocol.handle_body(first)
            await asyncio.sleep(0)
            await rpc.serve(stop, read, protocol, parser)
        except (ConnectionError, OSError) as exc:
            log.info("session %d: connection lost (%s)", self.sessions, exc)
        finally:
            stop.set()
            try:
                await server.aclose()
            except Exception:
                log.exception("session %d did not close cleanly", self.sessions)
            self.active = None
            log.info("session %d ended; listening for the next client", self.sessions)


class _WsWriter:
    """pygls' writer interface over a WebSocket: one message per JSON-RPC message."""

    def __init__(self, websocket: Any) -> None:
        self._ws = websocket

    def write(self, data: bytes) -> Awaitable[None]:
        return self._ws.send(data.decode("utf-8"))

    def close(self) -> Awaitable[None]:
        return self._ws.close()
