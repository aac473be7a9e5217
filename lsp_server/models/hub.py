"""Pulling a model from a Hugging Face Hub repository (or a mirror at `HF_ENDPOINT`).

huggingface_hub honours HF_ENDPOINT (read here at call time, not import time), HF_TOKEN for gated
repos, retries and resumes within a download, and checks the byte count; this adds the sha256
check (the catalogue's, else the Hub's LFS hash from the file's ETag), the GGUF magic, and the
comparison with the file trusted on first use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lsp_server.models import trust
from lsp_server.models.local import (
    DISK_FULL,
    QUARANTINE_SUFFIX,
    SHA256_RE,
    Progress,
    PullError,
    check_download,
    hash_file,
    staging_dir,
)
from lsp_server.models.spec import ModelSpec


def pull_hf(spec: ModelSpec, dest: Path, report: Progress) -> str:
    """Download into a staging folder, check, then rename into place; the file's sha256.

    A file that differs from the one trusted on first use is kept aside as `NAME.gguf.new` and
    refused; the staging folder is removed whatever happens.
    """
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    src = spec.source
    assert src.repo is not None and src.file is not None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    staging = staging_dir(dest)
    label = f"{spec.name}: {src.repo}/{src.file}"
    try:
        try:
            url = huggingface_hub.hf_hub_url(
                src.repo, src.file, revision=src.revision, endpoint=endpoint
            )
            meta = huggingface_hub.get_hf_file_metadata(url, endpoint=endpoint)
            expected = spec.sha256
            if expected is None and meta.etag and SHA256_RE.match(meta.etag.lower()):
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
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                raise  # reported by `store.pull` with the space needed
            raise PullError(f"download of {src.repo}/{src.file} failed: {_one_line(exc)}") from None
        except Exception as exc:  # network errors of huggingface_hub's HTTP client
            raise PullError(f"download of {src.repo}/{src.file} failed: {_one_line(exc)}") from None
        size = downloaded.stat().st_size
        digest = hash_file(downloaded, report, f"{spec.name}: verifying sha256")
        check_download(spec, digest, size, exact_size=False, expected=expected)
        with downloaded.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise PullError(f"{src.repo}/{src.file} is not a GGUF file")
        record = trust.trusted(spec, dest.parent) if trust.tofu(spec) else None
        if record is not None and (record["sha256"], record["size"]) != (digest, size):
            aside = dest.with_name(dest.name + QUARANTINE_SUFFIX)
            os.replace(downloaded, aside)
            raise PullError(trust.untrusted_message(spec, aside, record, digest, size))
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
