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

The checks are `protocol.auth`, the one-session-at-a-time serving `protocol.listener`; this
module binds, writes the token file, and runs a listener until it is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lsp_server import defaults
from lsp_server.hosts import is_loopback
from lsp_server.protocol.auth import (
    ListenError,
    handshake_refusal,
    new_token,
    token_from_env,
    token_path,
    write_token,
)
from lsp_server.protocol.listener import Listener, Session

__all__ = ["ListenError", "PageFactory", "Session", "serve_tcp", "serve_unix", "serve_ws"]

log = logging.getLogger(__name__)


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


# What answers the plain HTTP requests of a WebSocket listener (the playground's page), made once
# the port and the token are known: (connection, request) -> a websockets Response.
PageFactory = Callable[[int, str], Callable[[Any, Any], Any]]


def serve_ws(make_server: Callable[[], Session], host: str, port: int,
             token_file: str | None = None, *, page: PageFactory | None = None) -> None:
    """`serve --ws HOST:PORT`: WebSocket for browser-based clients. With `page` (the playground)
    the same port also serves that page over plain HTTP, so the page's origin is the one origin
    the handshake admits."""
    from websockets.asyncio.server import serve as ws_serve

    async def start(sock: socket.socket, bound: int, token: str) -> Any:
        listener = Listener(make_server, token)
        respond = page(bound, token) if page is not None else None

        def check(connection: Any, request: Any) -> Any:
            refusal = handshake_refusal(request.headers.get("Host"),
                                        request.headers.get_all("Origin"), bound)
            if refusal is not None:
                log.warning("refused a WebSocket upgrade: %s", refusal)
                return connection.respond(403, f"{refusal}\n")
            upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
            if respond is not None and not upgrade:
                return respond(connection, request)
            return None

        return await ws_serve(listener.ws_connection, sock=sock, process_request=check,
                              max_size=defaults.PREAUTH_MAX_BYTES,  # raised once authenticated
                              open_timeout=defaults.AUTH_TIMEOUT_S)

    _serve_with_token("ws", host, port, token_file, start)


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
