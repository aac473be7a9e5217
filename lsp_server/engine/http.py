"""HTTP to a remote engine: URLs, the API key header, retries with backoff, and server-sent
event streams whose socket a cancel shuts down.

Why stdlib `http.client`: a streamed response is read line by line from a socket we own, so a
superseded or cancelled request shuts that socket down from the event loop's thread
(`CancelFlag.on_set`); the engine sees the disconnect at its next token and stops generating
(llama-server, vLLM and llama-cpp-python's server all check). No new dependency.

The API key is read from the environment variable the `apiKeyEnv` setting names (only a
`STARCODER_*` name, checked again here), at request time, and only ever goes into the
`Authorization` header: never into a log, a status or an error message. Over plain `http` it is
sent only to a loopback engine: anywhere else anyone on the path could read it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from lsp_server import defaults
from lsp_server.engine.base import EngineDown
from lsp_server.engine.generate import Cancelled
from lsp_server.engine.worker import CancelFlag
from lsp_server.hosts import is_loopback
from lsp_server.settings import API_KEY_ENV, LLAMA_SERVER, OPENAI

log = logging.getLogger(__name__)

# Status codes worth retrying: the engine or the load balancer in front of it is busy or moving.
RETRY_STATUS = frozenset({408, 429, 502, 503, 504})


class RemoteError(EngineDown):
    """The engine cannot be used now; the message names the URL and the reason (never the key)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


# --- pure helpers ---------------------------------------------------------------------------------
def api_root(endpoint: str, flavour: str) -> str:
    """The base URL requests are built on, without a trailing slash.

    openai: the OpenAI base URL (`…/v1`, as the OpenAI SDK's base_url); a bare host gets `/v1`.
    llama-server: its native routes live at the root, so a `/v1` the user copied is dropped.
    """
    text = endpoint.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"starcoder.endpoint must be an http(s) URL, got {endpoint!r}")
    path = parts.path.rstrip("/")
    if flavour == OPENAI and not path:
        path = "/v1"
    if flavour == LLAMA_SERVER and path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def join_url(root: str, route: str) -> str:
    """`root` + `route` (`route` relative to the root, e.g. "completions" or "/infill")."""
    return f"{root}/{route.lstrip('/')}"


def server_root(root: str) -> str:
    """Scheme and host only: vLLM and llama-cpp-python serve /tokenize beside /v1, not under it."""
    parts = urllib.parse.urlsplit(root)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def parse_sse(lines: Iterable[bytes]) -> Iterator[str]:
    """The `data` payloads of a server-sent event stream, until `[DONE]` or the stream ends.

    Multi-line data fields are joined with newlines (the SSE rule); comments (`: ping`), `event:`
    and `id:` fields are ignored. Also accepts a plain JSON-lines stream (no `data:` prefix).
    """
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    return
                yield payload
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif name not in ("event", "id", "retry") and line.lstrip().startswith("{"):
            yield line  # JSON lines
    if data:
        payload = "\n".join(data)
        if payload.strip() != "[DONE]":
            yield payload


def backoff_delays(retries: int, base: float = defaults.REMOTE_BACKOFF_BASE_S,
                   cap: float = defaults.REMOTE_BACKOFF_CAP_S,
                   rand: Callable[[], float] = random.random) -> list[float]:
    """Seconds to wait before each retry: exponential, capped, with "equal jitter" (half fixed,
    half random) so clients of one engine spread out but never retry at once."""
    out = []
    for n in range(max(0, retries)):
        d = min(cap, base * 2**n)
        out.append(d / 2 + rand() * d / 2)
    return out

# --- HTTP -----------------------------------------------------------------------------------------
class Opened(NamedTuple):
    conn: http.client.HTTPConnection
    resp: http.client.HTTPResponse
    unregister: Callable[[], None]  # stop closing the socket on cancel


@dataclass
class Limits:
    connect_timeout_s: float = defaults.REMOTE_CONNECT_TIMEOUT_S
    read_timeout_s: float = defaults.REMOTE_READ_TIMEOUT_S
    retries: int = defaults.REMOTE_RETRIES


class RemoteClient:
    """JSON and streamed-JSON requests to one engine, with timeouts and retries with backoff."""

    def __init__(self, flavour: str, endpoint: str, api_key_env: str | None,
                 limits: Limits | None = None,
                 sleep: Callable[[float, threading.Event | None], None] | None = None) -> None:
        self.flavour = flavour
        self.root = api_root(endpoint, flavour)
        if api_key_env is not None and not API_KEY_ENV.fullmatch(api_key_env):
            raise RemoteError(f"starcoder.apiKeyEnv {api_key_env!r} is refused: only variables "
                              "named STARCODER_… are read")
        parts = urllib.parse.urlsplit(self.root)
        if "@" in parts.netloc:
            raise RemoteError("starcoder.endpoint must not contain a user name or password")
        self.api_key_env = api_key_env
        # Why the key is not sent (None: it is): plain http leaves this machine unencrypted.
        self.key_withheld: str | None = None
        if api_key_env and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            self.key_withheld = (f"the API key ({api_key_env}) is not sent over plain http to "
                                 f"{parts.hostname}; use an https:// endpoint")
            log.warning("%s", self.key_withheld)
        self.limits = limits or Limits()
        self._sleep = sleep or (lambda s, cancel: cancel.wait(s) if cancel else time.sleep(s))

    def __repr__(self) -> str:  # never shows the key
        return f"RemoteClient({self.flavour}, {self.root})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.api_key_env and self.key_withheld is None:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise RemoteError(f"the environment variable {self.api_key_env} (starcoder.apiKeyEnv) "
                                  "is not set; it must hold the engine's API key")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(self, method: str, url: str, body: dict[str, Any] | None,
              cancel: threading.Event | None = None) -> Opened:
        """One attempt: connect, send, read the status line; raise RemoteError on failure.

        From the moment the socket exists, setting `cancel` shuts it down: llama-server sends its
        headers only with the first token, so a cancel may come while we wait for them.
        """
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.limits.connect_timeout_s)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        unregister: Callable[[], None] = lambda: None  # noqa: E731

        def fail(exc: BaseException) -> BaseException:
            unregister()
            conn.close()
            return Cancelled() if cancel is not None and cancel.is_set() else exc

        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(self.limits.read_timeout_s)
            if isinstance(cancel, CancelFlag):
                unregister = cancel.on_set(lambda: _shutdown(conn))
            conn.request(method, target, body=data, headers=self._headers())
            resp = conn.getresponse()
        except RemoteError as exc:
            raise fail(exc) from None
        except TimeoutError as exc:
            raise fail(RemoteError(f"no answer from {url} within {self.limits.read_timeout_s:g} s "
                                   f"({exc or 'timed out'})", True)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise fail(RemoteError(f"cannot reach {url}: {_reason(exc)}", True)) from None
        if resp.status >= 400:
            try:
                detail = resp.read(400).decode("utf-8", "replace").strip()
            except (OSError, http.client.HTTPException):
                detail = ""
            withheld = (f" ({self.key_withheld})" if self.key_withheld and resp.status in (401, 403)
                        else "")
            raise fail(RemoteError(f"{url} answered HTTP {resp.status} {resp.reason}"
                                   + (f": {detail[:200]}" if detail else "") + withheld,
                                   resp.status in RETRY_STATUS))
        return Opened(conn, resp, unregister)

    def _open_with_retries(self, method: str, url: str, body: dict[str, Any] | None,
                           cancel: threading.Event | None) -> Opened:
        delays = backoff_delays(self.limits.retries)
        for attempt in range(len(delays) + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled
            try:
                return self._open(method, url, body, cancel)
            except RemoteError as exc:
                if not exc.retryable or attempt == len(delays):
                    raise
                log.debug("%s; retry %d in %.2f s", exc, attempt + 1, delays[attempt])
                self._sleep(delays[attempt], cancel)
        raise AssertionError("unreachable")

    def get_json(self, route: str, body: dict[str, Any] | None = None, *, root: str | None = None,
                 retries: bool = True) -> Any:
        """GET (or POST when `body` is given) a JSON answer."""
        url = join_url(root or self.root, route)
        method = "POST" if body is not None else "GET"
        conn, resp, _ = (self._open_with_retries(method, url, body, None) if retries
                         else self._open(method, url, body))
        try:
            raw = resp.read(defaults.REMOTE_MAX_JSON_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"cannot read the answer of {url}: {_reason(exc)}", True) from None
        finally:
            conn.close()
        if len(raw) > defaults.REMOTE_MAX_JSON_BYTES:
            raise RemoteError(f"{url} answered more than {defaults.REMOTE_MAX_JSON_BYTES} bytes")
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise RemoteError(f"{url} did not answer JSON") from None

    def stream(self, route: str, body: dict[str, Any], cancel: threading.Event | None
               ) -> Generator[dict[str, Any], None, None]:
        """The JSON events of a streamed answer. Closing the iterator (or setting `cancel`) closes
        the connection, which is what tells the engine to stop generating."""
        url = join_url(self.root, route)
        conn, resp, unregister = self._open_with_retries("POST", url, body, cancel)
        deadline = time.monotonic() + defaults.REMOTE_MAX_STREAM_S
        events = 0
        try:
            for payload in parse_sse(_lines(resp, url)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                events += 1
                if events > defaults.REMOTE_MAX_STREAM_EVENTS or time.monotonic() > deadline:
                    raise RemoteError(f"{url} streamed past the limits ({events} events, "
                                      f"{defaults.REMOTE_MAX_STREAM_S:g} s): closed")
                try:
                    event = json.loads(payload)
                except ValueError:
                    raise RemoteError(f"{url} sent a malformed event: {payload[:100]!r}") from None
                if isinstance(event, dict):
                    yield event
            if cancel is not None and cancel.is_set():
                raise Cancelled
        except TimeoutError:
            raise RemoteError(f"{url} stopped sending for {self.limits.read_timeout_s:g} s",
                              False) from None
        except (OSError, http.client.HTTPException) as exc:
            if cancel is not None and cancel.is_set():
                raise Cancelled from None
            raise RemoteError(f"the stream from {url} broke: {_reason(exc)}") from None
        finally:
            unregister()
            _shutdown(conn)
            conn.close()


def _lines(resp: http.client.HTTPResponse, url: str) -> Iterator[bytes]:
    """The response's lines, each and all together within bounds: an engine that never ends a
    line, or never ends the stream, must not fill our memory."""
    total = 0
    while True:
        line = resp.readline(defaults.REMOTE_MAX_LINE_BYTES + 1)
        if not line:
            return
        total += len(line)
        if len(line) > defaults.REMOTE_MAX_LINE_BYTES or total > defaults.REMOTE_MAX_STREAM_BYTES:
            raise RemoteError(f"{url} sent an answer past the size limits "
                              f"({defaults.REMOTE_MAX_LINE_BYTES} bytes a line, "
                              f"{defaults.REMOTE_MAX_STREAM_BYTES} in all): closed")
        yield line


def _shutdown(conn: http.client.HTTPConnection) -> None:
    """Close the socket at once, even while another thread is blocked reading it."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the engine running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the engine"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the engine closed the connection"
    return str(exc) or type(exc).__name__
