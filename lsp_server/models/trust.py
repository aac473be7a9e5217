"""Trust on first use: what a Hub source served when first pulled, kept to compare later pulls.

A Hub preset pins no sha256 (the catalogue cannot know every quantisation's hash), so the sha256
and size of its first verified pull are recorded in the cache (`trusted.json`, per source: repo,
file, revision). A later pull or check that finds a different file is refused — the repository
may have been updated, or taken over — with the new file kept aside as `NAME.gguf.new` until the
user accepts it (`models verify NAME --accept-new`). Catalogue entries with a sha256 (the PyPI
parts) stay pinned: there is nothing to accept for them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lsp_server.models.local import SHA256_RE, lock, model_dir
from lsp_server.models.spec import ModelSpec

TRUST_FILE = "trusted.json"


def tofu(spec: ModelSpec) -> bool:
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


def trusted(spec: ModelSpec, cache_dir: Path | None) -> dict[str, Any] | None:
    """The record of what this source served when first used, if any (and well-formed)."""
    if not tofu(spec):
        return None
    record = _read_trust(cache_dir).get(spec.source.identity())
    if (isinstance(record, dict) and isinstance(record.get("sha256"), str)
            and SHA256_RE.match(record["sha256"]) and isinstance(record.get("size"), int)):
        return record
    return None


def record_trust(spec: ModelSpec, digest: str, size: int, cache_dir: Path | None) -> None:
    """Trust `digest` for this source from now on (first use, or the user accepted a new file)."""
    path = _trust_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock(path.with_name(path.name + ".lock")):
        data = _read_trust(cache_dir)
        data[spec.source.identity()] = {
            "sha256": digest, "size": size, "model": spec.name,
            "trusted_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


def untrusted_message(spec: ModelSpec, path: Path, record: dict[str, Any], digest: str,
                      size: int) -> str:
    """Why a file that differs from the trusted one was refused, and how to accept it."""
    src = spec.source
    return (
        f"{src.repo}/{src.file} is not the file first pulled for '{spec.name}' (trusted on "
        f"{record.get('trusted_at', 'first use')}: sha256 {record['sha256'][:16]}…, "
        f"{record['size']} bytes; this one: sha256 {digest[:16]}…, {size} bytes). Its publisher "
        f"may have updated it — or someone replaced it. It is kept aside as {path}; to trust it: "
        f"`starcoder-lsp models verify {spec.name} --accept-new`"
    )
