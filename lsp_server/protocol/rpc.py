"""JSON-RPC framing and message checks that survive hostile or broken input.

pygls 2.1.1's reader loop (`pygls.io_.run_async`) loses every later message after one bad header
(it only accepts `Content-Length: N\\r\\n` at the very start of a line, so a body glued to the next
header is never found again), allocates whatever a header announces, and reads unbounded lines.
Its message handling answers nothing for a request whose params fail to structure, that arrives
after `shutdown`, or that is not JSON-RPC 2.0. This module replaces the reader loop and wraps the
message handling, so every request that can be identified gets exactly one answer (a result or a
JSON-RPC error) and the server keeps reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from lsp_server import defaults

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002


class _NoStructureTracebacks(logging.Filter):
    """pygls logs a full traceback for every message that does not fit its type; we log one line
    with cattrs' reason instead (a hostile client would otherwise flood the editor's log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to deserialize message")


logging.getLogger("pygls.protocol.json_rpc").addFilter(_NoStructureTracebacks())

_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
_HEADER_END = b"\r\n\r\n"


@dataclass
class FrameParser:
    """Splits a byte stream into message bodies; resynchronises on the next `Content-Length`.

    Bodies longer than `max_body` are skipped without being stored (their bytes are discarded as
    they arrive), so a hostile header cannot make the server allocate what it announces.
    """

    max_body: int = defaults.MAX_MESSAGE_BYTES
    max_header: int = defaults.MAX_HEADER_BYTES
    _buf: bytearray = field(default_factory=bytearray)
    _need: int | None = None  # body bytes expected (None: reading headers)
    _skip: int = 0  # bytes of an oversized body still to discard
    errors: int = 0  # framing problems seen (for logs and tests)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add `data` and yield every complete body it finishes."""
        self._buf += data
        while True:
            if self._skip:
                dropped = min(self._skip, len(self._buf))
                self._skip -= dropped
                del self._buf[:dropped]
                if self._skip:
                    return
            elif self._need is None:
                if not self._read_header():
                    return
            elif len(self._buf) < self._need:
                return
            else:
                body = bytes(self._buf[: self._need])
                del self._buf[: self._need]
                self._need = None
                yield body

    def _error(self, what: str) -> None:
        self.errors += 1
        log.warning("malformed JSON-RPC framing: %s; skipping to the next header", what)

    def _read_header(self) -> bool:
        """Consume one header block, setting `_need` (or `_skip`); False: more bytes needed."""
        while True:
            end = self._buf.find(_HEADER_END)
            if end < 0:
                if len(self._buf) > self.max_header:
                    # No header end in sight: keep only what may be the start of the next header.
                    starts = [m.start() for m in _CONTENT_LENGTH.finditer(self._buf)]
                    keep_from = starts[-1] if starts and starts[-1] > 0 else len(self._buf) - 64
                    self._error(f"{keep_from} bytes without a header end")
                    del self._buf[:keep_from]
                return False
            block = bytes(self._buf[:end])
            del self._buf[: end + len(_HEADER_END)]
            # Junk before the header (e.g. the tail of a body whose length was wrong) is dropped:
            # parse from the last Content-Length in the block.
            starts = [m.start() for m in _CONTENT_LENGTH.finditer(block)]
            if not starts:
                self._error(f"header block without Content-Length: {block[:80]!r}")
                continue
            if starts[-1] > 0 and not block[: starts[-1]].endswith(b"\r\n"):
                self._error(f"junk before a header: {block[: min(starts[-1], 80)]!r}")
            length = _parse_length(block[starts[-1] :])
            if length is None or length == 0:
                self._error(f"bad Content-Length: {block[starts[-1] :][:80]!r}")
                continue
            if length > self.max_body:
                self._error(f"a {length}-byte message is over the {self.max_body}-byte limit")
                self._skip = length
            else:
                self._need = length
            return True


def _parse_length(header: bytes) -> int | None:
    first = header.split(b"\r\n", 1)[0]
    value = first.split(b":", 1)[1].strip()
    if not value.isdigit() or len(value) > 12:
        return None
    return int(value)


def _request_id(data: dict[str, Any]) -> int | str | None:
    """The id to answer with: JSON-RPC allows a number or a string; anything else gets null."""
    msg_id = data.get("id")
    if isinstance(msg_id, bool) or not isinstance(msg_id, int | str):
        return None
    return msg_id


class RobustProtocol(LanguageServerProtocol):
    """pygls' protocol, answering every identifiable request even when it cannot be handled."""

    # Set by a network listener: `exit` then ends this client's session, not the whole process
    # (pygls calls sys.exit, which would end every later client's chance to connect).
    on_exit: Callable[[], None] | None = None

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Any:
        if self.on_exit is None:
            yield from super().lsp_exit(*args)
            return
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.on_exit()

    def send_error(self, msg_id: int | str | None, code: int, message: str) -> None:
        self._send_response(msg_id, error=types.ResponseError(code=code, message=message))  # type: ignore[arg-type]

    def handle_body(self, body: bytes) -> None:
        """One framed message: parse, check, structure, dispatch; errors become answers."""
        try:
            data = json.loads(body)
        except Exception as exc:  # invalid UTF-8 or JSON, absurd nesting (RecursionError)
            log.warning("unparseable message (%s): %r", type(exc).__name__, body[:80])
            self.send_error(None, PARSE_ERROR, f"Parse error: {type(exc).__name__}")
            return
        if not isinstance(data, dict):
            self.send_error(None, INVALID_REQUEST, "Invalid request: not a JSON object "
                            "(LSP has no batches)")
            return
        is_request = "id" in data and "method" in data
        msg_id = _request_id(data)
        method = data.get("method")
        if data.get("jsonrpc") != "2.0" or ("method" in data and not isinstance(method, str)):
            log.warning("invalid JSON-RPC message: %r", body[:120])
            if is_request or ("id" in data and "result" not in data and "error" not in data):
                self.send_error(msg_id, INVALID_REQUEST,
                                'Invalid request: needs "jsonrpc": "2.0" and a string method')
            return
        if is_request and msg_id is None:
            self.send_error(None, INVALID_REQUEST, "Invalid request: id must be a number or string")
            return
        if "method" in data:
            data.setdefault("params", None)  # JSON-RPC lets a message omit params; pygls does not
        try:
            message = self.structure_message(data)
        except Exception as exc:
            if is_request:
                log.info("request %r (%s) does not fit its type: %s", msg_id, method, _cause(exc))
                if isinstance(exc, JsonRpcInvalidParams):
                    self.send_error(msg_id, INVALID_PARAMS,
                                    f"Invalid params for {method}: {_cause(exc)}")
                else:
                    self.send_error(msg_id, INTERNAL_ERROR, f"Cannot read {method}: {_cause(exc)}")
            else:
                log.warning("dropped a notification or response that does not fit its type: %s",
                            _cause(exc))
            return
        if isinstance(message, dict):  # structure_message leaves non-JSON-RPC dicts as they are
            return
        self.handle_message(message)

    def handle_message(self, message: Any) -> None:
        """The spec's answers where pygls is silent or fails: before `initialize`, requests get
        ServerNotInitialized and notifications are dropped; after `shutdown`, requests get
        InvalidRequest."""
        method = getattr(message, "method", None)
        request = method is not None and getattr(message, "id", None) is not None
        if self._workspace is None and method not in (None, types.INITIALIZE, types.EXIT):
            if request:
                self.send_error(message.id, SERVER_NOT_INITIALIZED, "the server is not initialized")
            return
        if self._shutdown and request and method != types.EXIT:
            self.send_error(message.id, INVALID_REQUEST, "the server is shut down")
            return
        super().handle_message(message)


    def _execute_handler(self, msg_id: str | int, handler: Callable[[Any], Any],
                         callback: Callable[[Future[Any]], None],
                         args: tuple[Any, ...] | None = None,
                         kwargs: dict[str, Any] | None = None) -> Any:
        """pygls 2.1.1 files each notification's future, and each step of a builtin generator
        handler (`workspace/executeCommand` runs our command as one), under a fresh uuid and never
        removes it: ~1.8 KB kept per didChange, forever. Drop it once the handler is done.
        pygls' `$/cancelRequest` cancels only the generator's result, so a cancelled
        `starcoder.edit` would go on and apply its edit: cancel the running step with it."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        step_of = (callback.keywords.get("result_future")
                   if isinstance(callback, partial) and callback.func == self._run_generator
                   else None)
        if callback != self._check_handler_result and step_of is None:
            return  # a request: pygls removes it when answering
        future = self._request_futures.get(msg_id)
        if future is None:
            return
        if step_of is not None and not future.done():
            step_of.add_done_callback(lambda outer: outer.cancelled() and future.cancel())
        if future.done():
            self._request_futures.pop(msg_id, None)
        else:
            future.add_done_callback(lambda _: self._request_futures.pop(msg_id, None))


def _cause(exc: BaseException) -> str:
    """A one-line reason: cattrs' leaf errors ("expected int @ $.params.position.line")."""
    inner = exc.__cause__ or exc
    if isinstance(inner, ClassValidationError):
        with contextlib.suppress(Exception):
            return "; ".join(transform_error(inner, path="$"))[:300]
    text = str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    return text[:200]


async def serve(stop: threading.Event, read: Callable[[], Awaitable[bytes]],
                protocol: RobustProtocol, parser: FrameParser | None = None) -> None:
    """Read until EOF (or `stop`), handing each framed body to the protocol (`parser`: one that
    already holds bytes read past a first message, e.g. by a listener's token check)."""
    parser = parser or FrameParser()
    pending = list(parser.feed(b""))
    while not stop.is_set():
        for body in pending:
            try:
                protocol.handle_body(body)
            except Exception:  # a bug in a handler's dispatch must not end the reader loop
                log.exception("unable to handle a message")
            await asyncio.sleep(0)  # let handlers scheduled by this message start
            if stop.is_set():
                return
        data = await read()
        if not data:
            break
        pending = list(parser.feed(data))


def serve_stdio(server: LanguageServer, stdin: Any, stdout: Any) -> None:
    """Serve `server` over stdio until EOF or `exit` (pygls' `start_io`, with our framing)."""
    server._stop_event = threading.Event()
    read = getattr(stdin, "read1", stdin.read)
    server.protocol.set_writer(StdoutWriter(stdout))

    async def chunk() -> bytes:
        loop = asyncio.get_running_loop()
        data: bytes = await loop.run_in_executor(server.thread_pool, read,
                                                 defaults.READ_CHUNK_BYTES)
        return data

    try:
        asyncio.run(serve(server._stop_event, chunk, robust(server)))
    except BrokenPipeError:
        log.error("the connection to the client is lost: shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


def robust(server: LanguageServer) -> RobustProtocol:
    protocol = server.protocol
    if not isinstance(protocol, RobustProtocol):
        raise TypeError("the server's protocol_cls must derive from RobustProtocol")
    return protocol
