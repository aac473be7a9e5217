"""Where the server's log lines go: debug lines in a log file, not on stderr unless -v."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from lsp_server.cli import setup_logging


@pytest.mark.parametrize("verbose", [0, 1])
def test_a_log_file_gets_debug_lines_and_stderr_only_with_v(
        verbose: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, ours = logging.getLogger(), logging.getLogger("lsp_server")
    saved = root.handlers[:], root.level, ours.level
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    try:
        setup_logging(verbose, str(tmp_path / "logs" / "server.log"))
        log = logging.getLogger("lsp_server.test")
        log.debug("window lines 1-2")
        log.info("status ready")
        for h in root.handlers:
            h.flush()
        text = (tmp_path / "logs" / "server.log").read_text()
        assert "window lines 1-2" in text and "status ready" in text
        assert "status ready" in stderr.getvalue()
        assert ("window lines 1-2" in stderr.getvalue()) == bool(verbose)
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        ours.setLevel(saved[2])
