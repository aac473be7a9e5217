"""`starcoder-lsp playground` as a user starts it (`--no-open`), in a subprocess whose token file,
launcher and settings all live under the test's temp dir; its address (with the token) is read
from what it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.ports import free_port

URL = re.compile(r"playground at (http://127\.0\.0\.1:(\d+)/#token=(\S+))")


class Playground:
    def __init__(self, model: Path, tmp: Path, *extra: str, open_browser: bool = False) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.err_path = tmp / f"playground-{self.port}.err"
        self.runtime = tmp / "run"
        self.runtime.mkdir(mode=0o700, exist_ok=True)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime),
               "XDG_CONFIG_HOME": str(tmp / "config"),  # never the user's settings.toml
               # `webbrowser` runs this instead of a browser: it records what it was asked to open.
               "BROWSER": f"{sys.executable} -c \"import sys; open({str(tmp / 'opened')!r}, 'w')"
                          f".write(sys.argv[1])\" %s"}
        env.pop("STARCODER_LSP_TOKEN", None)
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lsp_server", "playground", "--port", str(self.port),
                 *([] if open_browser else ["--no-open"]), "--model", str(model),
                 "--log-file", str(tmp / "server.log"), *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                start_new_session=True)
        self.url = self.token = ""

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 60.0) -> Playground:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr()
            found = URL.search(self.stderr())
            if found and "listening on ws" in self.stderr():
                self.url, port, self.token = found.group(1), int(found.group(2)), found.group(3)
                assert port == self.port
                return self
            time.sleep(0.1)
        raise AssertionError(f"the playground did not start: {self.stderr()}")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl+C, as in a terminal; returns the exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.interrupt()
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
