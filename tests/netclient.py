"""`serve --tcp / --ws / --socket` as subprocesses, and LSP clients over a socket or a WebSocket,
for tests/test_transports.py and tests/test_attacks.py.

Not `lsp_server.driver` (stdio only, well-formed LSP only): these tests need the network
listeners, the token file, and clients that send what an attacker sends (no token, a wrong one,
HTTP, a foreign Origin) and read the raw refusal; no benchmark uses them, so they stay in tests/."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from testkit.rawrpc import encode
from tests.ports import free_port

INIT_CAPS = {"textDocument": {"inlineCompletion": {}}}


class Listening:
    """A listener subprocess; `token` is read from its token file (None for --socket)."""

    def __init__(self, kind: str, model: Path, tmp: Path, *, env: dict[str, str] | None = None,
                 host: str = "127.0.0.1", extra: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.port = free_port()
        self.socket_path = tmp / f"lsp-{self.port}.sock"
        self.token_file = tmp / f"{kind}-{self.port}.token"
        where = ([f"--{kind}", f"{host}:{self.port}", "--token-file", str(self.token_file)]
                 if kind in ("tcp", "ws") else ["--socket", str(self.socket_path)])
        self.log_path = tmp / f"listener-{self.port}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "serve", *where, "--model", str(model),
             "--threads", "1", *extra],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})})
        self.token: str | None = None

    def wait_ready(self, timeout: float = 60.0) -> Listening:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            if "listening on" in self.log():
                if self.kind in ("tcp", "ws") and self.token_file.exists():
                    self.token = self.token_file.read_text().strip() or None
                return self
            time.sleep(0.1)
        raise AssertionError(f"listener not up: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Listening:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def initialize_message(msg_id: int, options: dict[str, Any] | None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": INIT_CAPS,
                       "initializationOptions": options or {}}}


class _Client:
    """Messages in, answers out; subclasses move bytes."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.eof = threading.Event()
        self._cv = threading.Condition()
        self._ids = itertools.count(1)

    def _got(self, message: dict[str, Any]) -> None:
        with self._cv:
            if "method" in message and "id" in message:  # a server request: answer null
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            self.messages.append(message)
            self._cv.notify_all()

    def _closed(self) -> None:
        with self._cv:
            self.eof.set()
            self._cv.notify_all()

    def send(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def request(self, method: str, params: Any = None) -> int:
        msg_id = next(self._ids) + 100
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def answer(self, msg_id: int, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while time.monotonic() < deadline:
                for m in self.messages:
                    if m.get("id") == msg_id and "method" not in m:
                        return m
                if self.eof.is_set():
                    break
                self._cv.wait(0.2)
        raise AssertionError(f"no answer to {msg_id} (eof: {self.eof.is_set()}): "
                             f"{self.messages[-5:]}")

    def initialize(self, options: dict[str, Any] | None = None, timeout: float = 60.0
                   ) -> dict[str, Any]:
        self.send(initialize_message(1, options))
        return self.answer(1, timeout)

    def wait_for(self, method: str, pred: Any = lambda p: True, timeout: float = 120.0
                 ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while time.monotonic() < deadline and not self.eof.is_set():
                for m in self.messages:
                    if m.get("method") == method and pred(m.get("params")):
                        return dict(m.get("params") or {})
                self._cv.wait(0.2)
        raise AssertionError(f"no {method}: {self.messages[-5:]}")

    def wait_eof(self, timeout: float = 15.0) -> bool:
        return self.eof.wait(timeout)


class StreamClient(_Client):
    """LSP over a TCP or Unix socket, framed like stdio."""

    def __init__(self, address: tuple[str, int] | str) -> None:
        super().__init__()
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(address)
        self.raw = b""
        threading.Thread(target=self._read, daemon=True).start()

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(encode(message))

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._closed()
                return
            self.raw += chunk
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n")[0])
                if len(rest) < length:
                    break
                self._got(json.loads(rest[:length]))
                buf = rest[length:]

    def close(self) -> None:
        """As a process exiting would: the peer sees the end at once (a bare close() leaves the
        socket open while our reader thread is blocked in recv)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class WsClient(_Client):
    """LSP over a WebSocket (one JSON-RPC message per WebSocket message), a real client."""

    def __init__(self, port: int, origin: str | None = None) -> None:
        from websockets.sync.client import connect

        super().__init__()
        self.ws = connect(f"ws://127.0.0.1:{port}/", origin=origin,  # type: ignore[arg-type]
                          open_timeout=30).__enter__()
        threading.Thread(target=self._read, daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self.ws.send(json.dumps(message))

    def _read(self) -> None:
        try:
            for text in self.ws:
                self._got(json.loads(text))
        except Exception:
            pass
        self._closed()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send `data`, return everything received until the server closes (or `wait` passes)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            s.sendall(data)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except TimeoutError:
            pass
        except OSError:  # reset: the server closed with our bytes unread
            return out
    return out + b"<still open>"
