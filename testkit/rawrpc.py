"""A raw JSON-RPC client for hostile input: arbitrary bytes in, framed answers out.

Not `lsp_server.driver`, on purpose: the driver (a pygls client) only sends well-formed messages
and parses answers leniently; this one writes whatever it is given to the server's stdin (broken
headers, bad JSON, huge bodies), reads stdout with a strict parser and tracks every request by
id, so a test can check that each request got exactly one well-formed answer and the process
lives on. Used by tests/test_fuzz.py, test_attacks.py and test_security.py, and by
`benchmarks/fuzz_long.py` and `benchmarks/soak.py` (memory figures from /proc: `status_mb`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

MsgId = int | str


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: dict[str, Any]) -> bytes:
    return frame(json.dumps(message).encode("utf-8"))


class ProtocolViolation(AssertionError):
    """The server wrote something that is not a well-formed JSON-RPC message."""


def status_mb(pid: int, field: str) -> float:
    """A memory figure of a live process from /proc (VmRSS, VmHWM = peak RSS), in MB; nan if gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RawServer:
    """`python -m lsp_server serve` with raw pipes; answers are collected by a reader thread."""

    def __init__(self, model: Path | None = None, *, command: Sequence[str] | None = None,
                 env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        cmd = list(command or [sys.executable, "-m", "lsp_server", "serve"])
        if model is not None:
            cmd += ["--model", str(model), "--threads", "1"]
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="rawrpc-", suffix=".log")[1])
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env={**os.environ, **(env or {})})
        self.responses: dict[Any, list[dict[str, Any]]] = {}
        self.null_id_errors: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.answered_at: dict[Any, float] = {}  # time.monotonic() of each first answer
        self.violations: list[str] = []
        self.messages_sent = 0  # framed messages (or chunks of raw bytes) written
        self.bytes_sent = 0
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # --- reading ----------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                ch = out.read(1)
                if not ch:
                    with self._cv:
                        self._cv.notify_all()
                    return
                header += ch
            try:
                length = int(header.split(b":", 1)[1].split(b"\r\n", 1)[0])
                assert header.startswith(b"Content-Length: ")
                message = json.loads(out.read(length))
            except Exception as exc:
                self.violations.append(f"bad frame from the server: {header!r}: {exc}")
                continue
            self._record(message)

    def _record(self, message: Any) -> None:
        with self._cv:
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                self.violations.append(f"not JSON-RPC 2.0: {message!r}"[:300])
            elif "method" in message:
                if "id" in message:  # a server->client request: answer null (we declared nothing)
                    self.write(encode({"jsonrpc": "2.0", "id": message["id"], "result": None}),
                               count=False)
                self.notifications.append(message)
            else:
                if ("result" in message) == ("error" in message):
                    self.violations.append(f"needs exactly one of result/error: {message!r}"[:300])
                err = message.get("error")
                if err is not None and not (isinstance(err, dict) and isinstance(err.get("code"), int)
                                            and isinstance(err.get("message"), str)):
                    self.violations.append(f"malformed error: {message!r}"[:300])
                if message.get("id") is None:
                    self.null_id_errors.append(message)
                else:
                    self.responses.setdefault(message["id"], []).append(message)
                    self.answered_at.setdefault(message["id"], time.monotonic())
            self._cv.notify_all()

    # --- writing ----------------------------------------------------------------------------------
    def write(self, data: bytes, *, count: bool = True) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        if count:
            self.messages_sent += 1
            self.bytes_sent += len(data)

    def next_id(self) -> int:
        return next(self._ids)

    def request(self, method: str, params: Any = None, msg_id: MsgId | None = None) -> MsgId:
        msg_id = self.next_id() if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.write(encode(message))
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.write(encode(message))

    # --- waiting and checks -------------------------------------------------------------------------
    def wait(self, ids: Iterable[MsgId], timeout: float = 60.0) -> dict[MsgId, dict[str, Any]]:
        """The single answer to each of `ids`; AssertionError names the unanswered ones."""
        ids = list(ids)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                missing = [i for i in ids if i not in self.responses]
                if not missing or not self.alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.5))
        if missing:
            raise AssertionError(f"unanswered requests {missing[:10]} (alive: {self.alive()}, "
                                 f"log: {self.log_path})")
        dup = [i for i in ids if len(self.responses[i]) != 1]
        assert not dup, f"answered more than once: {dup[:10]}"
        return {i: self.responses[i][0] for i in ids}

    def call(self, method: str, params: Any = None, timeout: float = 60.0) -> dict[str, Any]:
        msg_id = self.request(method, params)
        return self.wait([msg_id], timeout)[msg_id]

    def wait_status(self, *states: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while time.monotonic() < deadline and self.alive():
                for n in self.notifications:
                    if n.get("method") == "starcoder/status" and n["params"]["state"] in states:
                        return dict(n["params"])
                self._cv.wait(0.2)
        raise AssertionError(f"no status in {states}; notifications: {self.notifications[-5:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss_mb(self) -> float:
        return status_mb(self.proc.pid, "VmHWM")

    def rss_mb(self) -> float:
        return status_mb(self.proc.pid, "VmRSS")

    # --- session ------------------------------------------------------------------------------------
    def initialize(self, init_options: dict[str, Any] | None = None,
                   capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        caps = capabilities or {"textDocument": {"inlineCompletion": {}}}
        result = self.call("initialize", {"processId": None, "rootUri": None,
                                          "capabilities": caps,
                                          "initializationOptions": init_options or {}})
        self.notify("initialized", {})
        return result

    def close(self, timeout: float = 30.0) -> int:
        """shutdown + exit (as editors do), then the exit code; kills a server that hangs."""
        if self.alive():
            with contextlib.suppress(Exception):
                self.wait([self.request("shutdown")], timeout)
            with contextlib.suppress(Exception):
                self.notify("exit")
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        self._log.close()
        return code

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
