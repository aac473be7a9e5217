"""Network listeners for `serve --tcp / --ws / --socket`: who may talk to the server, one session
per client.

A port on 127.0.0.1 is reachable by every web page the user opens (`fetch(…, {mode: "no-cors"})`
can POST anything to it) and by every local user. So a network listener:

- binds loopback only (the LSP stream is not encrypted; another machine goes through SSH);
- on TCP, closes at once a connection whose first bytes are not an LSP header (`POST / HTTP/1.1`
  and every other HTTP request start differently);
- on WebSocket, refuses an upgrade whose `Origin` is another site or whose `Host` is not loopback
  (DNS rebinding); a browser page cannot forge either header;
- requires the per-start token in the first message, `initialize`'s
  `initializationOptions.token` — the one place every LSP client can put a value (Neovim's
  `vim.lsp.rpc.connect` sends nothing but LSP); a wrong or missing token gets an error and the
  connection is closed before any handler runs;
- serves one session at a time, each with a fresh server object (its own documents, settings and
  model), and keeps listening after a client leaves; a second client is refused, never given the
  first one's output.

A Unix domain socket (`--socket PATH`, mode 0600) needs no token: its file permissions already
admit only the user, and browsers cannot reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import platformdirs

from lsp_server import defaults
from lsp_server.hosts import is_loopback
from lsp_server.protocol import rpc

log = logging.getLogger(__name__)

# What a listener answers when the first message fails the checks (JSON-RPC server error range).
UNAUTHORIZED = -32001
BUSY = -32002
_LSP_HEADER = re.compile(rb"content-(length|type)[ \t]*:", re.IGNORECASE)
_HEADER_NAMES = (b"content-length", b"content-type")


class ListenError(Exception):
    """The listener cannot start as asked; the message says what to do instead."""


class Session(Protocol):
    """What a listener needs from a server: its protocol, and a way to end it cleanly."""

    @property
    def protocol(self) -> rpc.RobustProtocol: ...

    async def aclose(self) -> None: ...


# --- the token ------------------------------------------------------------------------------------
def token_path(kind: str, port: int, override: str | None = None) -> Path:
    """Where the token of a listener on `port` is written: `$XDG_RUNTIME_DIR/starcoder-lsp/`
    (a per-user tmpfs) when there is one, else the user's cache dir (`…/starcoder-lsp/run/`)."""
    if override:
        return Path(override).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        base = Path(runtime) / defaults.APP_NAME
    else:
        base = Path(platformdirs.user_cache_dir(defaults.APP_NAME)) / "run"
    return base / f"{kind}-{port}.token"


def write_token(path: Path, token: str) -> None:
    """The token as one line in a new 0600 file (never through a symlink someone left there)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")


def new_token() -> str:
    return secrets.token_urlsafe(defaults.TOKEN_BYTES)


def token_from_env() -> str | None:
    """A token the user chose (`STARCODER_LSP_TOKEN`); too short to resist guessing is refused."""
    value = os.environ.get(defaults.TOKEN_ENV, "").strip()
    if not value:
        return None
    if len(value) < defaults.MIN_TOKEN_CHARS:
        raise ListenError(f"{defaults.TOKEN_ENV} must be at least {defaults.MIN_TOKEN_CHARS} "
                          "characters (or unset it: a token is then generated)")
    return value


def speaks_lsp(start: bytes) -> bool | None:
    """Whether a connection's first bytes are an LSP header (None: too few bytes to tell).
    `POST / HTTP/1.1`, `GET …` and every other HTTP request fail at their first byte."""
    low = start.lower()
    if not low or any(name.startswith(low) for name in _HEADER_NAMES):
        return None
    return _LSP_HEADER.match(low) is not None


# --- the first message ----------------------------------------------------------------------------
@dataclass
class Verdict:
    ok: bool
    body: bytes = b""  # the initialize message, token removed
    msg_id: int | str | None = None
    reason: str = ""


def check_first(body: bytes, token: str | None) -> Verdict:
    """The first message must be `initialize`, with the token when one is required."""
    try:
        data = json.loads(body)
    except Exception:
        return Verdict(False, reason="the first message is not JSON")
    if not isinstance(data, dict) or data.get("method") != "initialize":
        return Verdict(False, reason="the first message must be initialize")
    msg_id = rpc._request_id(data)
    params = data.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given: Any = None
    if isinstance(options, dict):
        given = options.pop("token", None)
        section = options.get(defaults.SETTINGS_SECTION)
        if given is None and isinstance(section, dict):
            given = section.pop("token", None)
    if token is not None and not (isinstance(given, str)
                                  and hmac.compare_digest(given.encode(), token.encode())):
        what = "a wrong token" if given is not None else "no token"
        return Verdict(False, msg_id=msg_id, reason=(
            f"starcoder-lsp: this listener needs the token from its token file in "
            f"initializationOptions.token; initialize carried {what}"))
    return Verdict(True, json.dumps(data).encode("utf-8"), msg_id)


def _error_frame(msg_id: int | str | None, code: int, message: str, *, headers: bool) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": msg_id,
                       "error": {"code": code, "message": message}}).encode()
    return (b"Content-Length: %d\r\n\r\n" % len(body) + body) if headers else body


# --- the listener ---------------------------------------------------------------------------------
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
                    writer.write(_error_frame(verdict.msg_id, code, reason, headers=True))
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
                    await websocket.send(_error_frame(
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


# --- starting one ---------------------------------------------------------------------------------
def _announce(what: str, token_file: Path | None) -> None:
    """One line on stderr (stdout is not LSP here, but tools read the log): where and how."""
    where = f"; token in {token_file}" if token_file else ""
    sys.stderr.write(f"starcoder-lsp: listening on {what}{where}\n")
    sys.stderr.flush()


def _prepare_token(kind: str, port: int, token_file: str | None) -> tuple[str, Path | None]:
    given = token_from_env()
    if given is not None:
        return given, None
    token = new_token()
    path = token_path(kind, port, token_file)
    try:
        write_token(path, token)
    except OSError as exc:
        raise ListenError(f"cannot write the token file {path}: {exc}") from None
    return token, path


def _require_loopback(host: str, flag: str) -> None:
    if not is_loopback(host):
        raise ListenError(
            f"serve {flag} listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}: "
            "the LSP stream is not encrypted. From another machine, forward the port over SSH "
            "(ssh -L PORT:127.0.0.1:PORT this-host).")


def _serve_with_token(kind: str, host: str, port: int, token_file: str | None,
                      start: Callable[[socket.socket, int, str], Awaitable[Any]]) -> None:
    """Bind, write the token, start (`start(sock, bound port, token)`) and serve until
    interrupted; the token file goes with the listener."""
    _require_loopback(host, f"--{kind}")

    async def main() -> None:
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        token, path = _prepare_token(kind, bound, token_file)
        try:
            server = await start(sock, bound, token)
            _announce(f"{kind} {host}:{bound}", path)
            async with server:
                await server.serve_forever()
        finally:
            if path is not None:
                path.unlink(missing_ok=True)

    _run_forever(main())


def serve_tcp(make_server: Callable[[], Session], host: str, port: int,
              token_file: str | None = None) -> None:
    """`serve --tcp HOST:PORT` until interrupted."""

    async def start(sock: socket.socket, bound: int, token: str) -> Any:
        listener = Listener(make_server, token)
        return await asyncio.start_server(listener.stream_connection, sock=sock)

    _serve_with_token("tcp", host, port, token_file, start)


def serve_unix(make_server: Callable[[], Session], path_text: str) -> None:
    """`serve --socket PATH`: a Unix domain socket only the user can open (0600)."""
    path = Path(path_text).expanduser()
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ListenError(f"{path} exists and is not a socket; choose another path")
        path.unlink()  # a socket left by an earlier run

    async def main() -> None:
        listener = Listener(make_server, None)
        old = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(listener.stream_connection, path=str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        _announce(f"unix socket {path}", None)
        try:
            async with server:
                await server.serve_forever()
        finally:
            path.unlink(missing_ok=True)

    _run_forever(main())


def serve_ws(make_server: Callable[[], Session], host: str, port: int,
             token_file: str | None = None) -> None:
    """`serve --ws HOST:PORT`: WebSocket for browser-based clients (the playground)."""
    from websockets.asyncio.server import serve as ws_serve

    async def start(sock: socket.socket, bound: int, token: str) -> Any:
        listener = Listener(make_server, token)

        def check(connection: Any, request: Any) -> Any:
            refusal = handshake_refusal(request.headers.get("Host"),
                                        request.headers.get_all("Origin"), bound)
            if refusal is not None:
                log.warning("refused a WebSocket upgrade: %s", refusal)
                return connection.respond(403, f"{refusal}\n")
            return None

        return await ws_serve(listener.ws_connection, sock=sock, process_request=check,
                              max_size=defaults.PREAUTH_MAX_BYTES,  # raised once authenticated
                              open_timeout=defaults.AUTH_TIMEOUT_S)

    _serve_with_token("ws", host, port, token_file, start)


def handshake_refusal(host: str | None, origins: list[str], port: int) -> str | None:
    """Why a WebSocket upgrade is refused, or None. `Host` must name loopback (a rebinding
    attacker's page names its own domain); `Origin`, when present (browsers always send it), must
    be this listener's own origin — the page the playground serves from this port."""
    if not host:
        return "no Host header"
    name, _, host_port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name:
        name, host_port = host, ""
    if not is_loopback(name) or (host_port and host_port != str(port)):
        return f"Host {host!r} is not this loopback listener"
    if len(origins) > 1:
        return "more than one Origin header"
    if origins:
        allowed = {f"http://{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        if origins[0].lower() not in allowed:
            return f"Origin {origins[0]!r} is not allowed (only this listener's own page)"
    return None


def _bind(host: str, port: int) -> socket.socket:
    """Bind before the token exists, so an ephemeral port (`:0`) names its token file."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(defaults.MAX_PENDING_CONNECTIONS)
    sock.setblocking(False)
    return sock


def _run_forever(main: Awaitable[None]) -> None:
    """Run a listener until Ctrl-C or SIGTERM; either way its token file and socket are removed."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(run())
