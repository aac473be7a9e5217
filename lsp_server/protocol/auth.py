"""Who may talk to a network listener: the per-start token, the first message, the WebSocket
handshake. Pure checks (no sockets), so each rule is tested on its own; `transports` says why
each exists.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from lsp_server import defaults
from lsp_server.hosts import is_loopback
from lsp_server.protocol import rpc

# What a listener answers when the first message fails the checks (JSON-RPC server error range).
UNAUTHORIZED = -32001
BUSY = -32002
_LSP_HEADER = re.compile(rb"content-(length|type)[ \t]*:", re.IGNORECASE)
_HEADER_NAMES = (b"content-length", b"content-type")


class ListenError(Exception):
    """The listener cannot start as asked; the message says what to do instead."""


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


# --- the first bytes and the first message --------------------------------------------------------
def speaks_lsp(start: bytes) -> bool | None:
    """Whether a connection's first bytes are an LSP header (None: too few bytes to tell).
    `POST / HTTP/1.1`, `GET …` and every other HTTP request fail at their first byte."""
    low = start.lower()
    if not low or any(name.startswith(low) for name in _HEADER_NAMES):
        return None
    return _LSP_HEADER.match(low) is not None


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


def error_frame(msg_id: int | str | None, code: int, message: str, *, headers: bool) -> bytes:
    """The one answer a refused client gets (framed for a stream, bare for a WebSocket)."""
    body = json.dumps({"jsonrpc": "2.0", "id": msg_id,
                       "error": {"code": code, "message": message}}).encode()
    return (b"Content-Length: %d\r\n\r\n" % len(body) + body) if headers else body


# --- the WebSocket handshake ----------------------------------------------------------------------
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
