"""The markdown files the server writes to show explanations (`window/showDocument`).

Named by a hash of their content (the client chooses nothing), written in the server's own cache
folder, and pruned: the newest `EXPLANATIONS_KEEP` files younger than `EXPLANATIONS_MAX_AGE_S`
stay, so a long session (or a client asking in a loop) does not fill the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from pathlib import Path

from lsp_server import defaults

log = logging.getLogger(__name__)

PREFIX = "explanation-"


def write(folder: Path, uri: str, markdown: str) -> Path:
    """Write the explanation and prune the folder; returns the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{uri}\n{markdown}".encode()).hexdigest()[:16]
    path = folder / f"{PREFIX}{name}.md"
    path.write_text(f"# Explanation\n\n{markdown[: defaults.EXPLANATION_MAX_CHARS]}\n",
                    encoding="utf-8")
    prune(folder, keep=path)
    return path


def prune(folder: Path, keep: Path | None = None, *, max_files: int = defaults.EXPLANATIONS_KEEP,
          max_age_s: float = defaults.EXPLANATIONS_MAX_AGE_S) -> int:
    """Delete our old explanation files (only ours: `explanation-*.md`); returns how many."""
    files = []
    for path in folder.glob(f"{PREFIX}*.md"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                files.append((path.stat().st_mtime, path))
    files.sort(reverse=True)
    now = time.time()
    removed = 0
    for n, (mtime, path) in enumerate(files):
        if path == keep or (n < max_files and now - mtime <= max_age_s):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    if removed:
        log.debug("pruned %d old explanation files from %s", removed, folder)
    return removed
