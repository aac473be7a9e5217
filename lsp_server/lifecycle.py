"""The model's lifecycle: load, connect, swap, unload when idle, reload when its file changes, probe
a remote engine until it is back — and the one status (loading / ready / busy / error / disabled /
unloaded) every change is reported through.

The only module that knows whether the engine is local or remote: it makes a `LocalEngine` or a
`RemoteEngine` and hands the pipelines an `Engine`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from lsp_server import defaults
from lsp_server.engine.base import Engine, EngineDown
from lsp_server.engine.local import LocalEngine
from lsp_server.engine.model import LoadedModel, LoadOptions, ModelError, load_model
from lsp_server.engine.remote import RemoteClient, RemoteEngine, RemoteError, Vocab, load_vocab
from lsp_server.engine.worker import Worker
from lsp_server.models import store
from lsp_server.models.catalog import Catalog, load_catalog
from lsp_server.models.spec import CatalogError, Family, ModelSpec
from lsp_server.models.watch import FileWatcher
from lsp_server.settings import LOCAL, SHRINK, Settings
from lsp_server.tasks import TaskSet

log = logging.getLogger(__name__)
T = TypeVar("T")

# (state, model, message) -> None; state is one of DESIGN.md's starcoder/status states.
StatusCallback = Callable[[str, str, str], None]
# (path, family, options, name) -> LoadedModel; tests pass a slow or memory-capped one.
Loader = Callable[[Path, Family, LoadOptions, str], LoadedModel]
DISABLED = "completions are turned off (starcoder.enable)"


class ModelManager:
    """Owns the engine and the worker thread that owns a local model."""

    def __init__(self, settings: Settings, on_status: StatusCallback | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 loader: Loader = load_model) -> None:
        self.settings = settings
        self.worker = Worker()
        self.engine: Engine | None = None
        self.spec: ModelSpec | None = None
        self._loader = loader
        self._on_status = on_status or (lambda s, m, msg: None)
        self._on_warning = on_warning or (lambda msg: None)
        self._state, self._model, self._message = "loading", settings.model, ""
        self._loaded_key: tuple[object, ...] = ()
        self._loaded_request = ""  # the `model` setting of the model now loaded
        self._fingerprint: tuple[object, ...] = ()
        self._load_lock = asyncio.Lock()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._watcher: FileWatcher | None = None
        self._probe_task: asyncio.Task[Any] | None = None
        self.tasks = TaskSet()

    # --- state ------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def model(self) -> str:
        return self._model

    @property
    def message(self) -> str:
        return self._message

    @property
    def ready(self) -> bool:
        return self._state == "ready"

    def _set(self, state: str, message: str = "") -> None:
        if (state, message) == (self._state, self._message):
            return
        self._state, self._message = state, message
        log.info("status %s: %s %s", state, self._model, message)
        self._on_status(state, self._model, message)

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        self._on_warning(message)

    def serving(self) -> Engine | None:
        """The engine for a request now, or None (and a load started if it was unloaded)."""
        if self._state == "unloaded" and self.settings.enable:
            self.tasks.spawn(self.load())  # answer now, load meanwhile
        if not self.ready or not self.settings.enable:
            return None
        self.touch()
        return self.engine

    def require(self) -> Engine:
        """The engine for a user's command (explain, edit), or a ModelError saying why not."""
        engine = self.serving()
        if engine is None:
            raise ModelError(f"the model is not ready ({self._state}: {self._message})")
        return engine

    async def reporting(self, work: Awaitable[T]) -> T:
        """`work`'s result for a user's command (explain, edit); an engine that went down is
        reported and probed (`engine_failed`) and raised as the ModelError the user sees."""
        try:
            return await work
        except EngineDown as exc:
            self.engine_failed(exc)
            raise ModelError(f"remote engine: {exc}") from None

    def engine_failed(self, exc: EngineDown) -> None:
        """The engine is down, slow or answering errors: say so, and probe until it is back."""
        self._set("error", f"remote engine: {exc}")
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = self.tasks.spawn(self._probe_loop())

    # --- settings and loading ---------------------------------------------------------------------
    def catalog(self) -> Catalog:
        return load_catalog(models_file=self.settings.models_file)

    def needs_load(self, settings: Settings) -> bool:
        """Whether adopting `settings` means loading the model (again)."""
        if not settings.enable:
            return False
        return settings.load_key() != self._loaded_key or self._state in ("error", "disabled")

    async def apply_settings(self, settings: Settings,
                             load: Callable[[], Awaitable[None]] | None = None) -> None:
        """Adopt new settings; reload the model only when a setting that shapes it changed
        (through `load`, e.g. the server's loader that also reports `$/progress`)."""
        reload = self.needs_load(settings)
        self.settings = settings
        self.touch()  # the idle time may have changed
        if not settings.enable:
            self._set("disabled", DISABLED)
            return
        if reload:
            await (load or self.load)()

    async def load(self) -> None:
        """Load (or connect to) the configured model; never raises.

        A new local model is loaded while the old one keeps serving, then swapped in. If reloading
        the *same* model fails (its file or settings changed), the old one stays and the user is
        told why; a failed switch to another model, or a first load, ends in `error`.
        """
        async with self._load_lock:
            # Claimed now, so settings that arrive while this load runs do not queue a second one.
            self._loaded_key = self.settings.load_key()
            if self.settings.backend != LOCAL:
                await self._connect()
            else:
                await self._load_local()

    def _adopt(self, engine: Engine, spec: ModelSpec) -> None:
        old, self.engine, self.spec = self.engine, engine, spec
        if old is not None and old is not engine:
            old.close()
        self._loaded_request = self.settings.model

    def _ready(self) -> None:
        if self.settings.enable:
            assert self.engine is not None
            self._set("ready", self.engine.description)
        else:
            self._set("disabled", DISABLED)

    async def _load_local(self) -> None:
        self._drop_engine()  # a remote engine no longer serves
        previous = self.engine if isinstance(self.engine, LocalEngine) else None
        reload_same = previous is not None and self._loaded_request == self.settings.model
        self._model = self.settings.model
        self._set("loading", f"loading {self.settings.model}")
        try:
            spec = self.catalog().resolve(self.settings.model)
            spec.require_fim()
            path = await asyncio.to_thread(_local_file, spec)
            n_ctx = min(self.settings.context_tokens, spec.context_length or 1 << 30)
            options = LoadOptions(n_ctx=n_ctx, n_threads=self.settings.threads,
                                  n_gpu_layers=self.settings.n_gpu_layers,
                                  shrink_to_fit=self.settings.memory_policy == SHRINK)

            def job(_: LoadedModel | None, __: threading.Event) -> LoadedModel:
                t0 = time.perf_counter()
                model = self._loader(path, spec.family, options, spec.name)
                log.info("loaded %s in %.2f s (n_ctx %d, %d threads, gpu layers %d)", spec.name,
                         time.perf_counter() - t0, n_ctx, options.n_threads, model.gpu_layers)
                self.worker.set_model(model)  # frees the previous model
                return model

            fut, _ = self.worker.submit(job)
            model = await asyncio.wrap_future(fut)
        except Exception as exc:
            expected = isinstance(exc, CatalogError | ModelError | store.PullError)
            if not expected:  # a bug or an unexpected llama.cpp failure: report, stay up
                log.exception("model load failed")
            reason = str(exc) if expected else f"could not load {self.settings.model}: {exc}"
            if reload_same and previous is not None and self.worker.model is previous.model:
                self._warn(f"{reason} — still using {previous.name}")
                self._set("ready", previous.description)
            else:
                self._set("error", reason)
            return
        if model.n_ctx < n_ctx:
            self._warn(f"not enough memory for a {n_ctx}-token context with {spec.name}: "
                       f"using {model.n_ctx} tokens (starcoder.memoryPolicy = shrink)")
        self._adopt(LocalEngine(model, self.worker, spec.name, spec.family), spec)
        self._fingerprint = _fingerprint_of(spec, path)
        self._watch(path)
        self._ready()
        self.touch()

    async def _connect(self) -> None:
        """backend = llama-server | openai: resolve the model's family (its FIM markers and stop
        strings come from models.toml), set up token counting, and probe the engine."""
        s = self.settings
        self._model = s.model
        self._set("loading", f"connecting to {s.endpoint or '(no endpoint)'}")
        await self._free_local()  # a local model no longer serves: free its memory
        try:
            if not s.endpoint:
                raise RemoteError(f"starcoder.backend is {s.backend!r} but starcoder.endpoint is "
                                  "not set (e.g. http://gpu-server:8080/v1)")
            client = RemoteClient(s.backend, s.endpoint, s.api_key_env)
            spec = self.catalog().resolve(s.model)
            spec.require_fim()
            n_ctx = min(s.context_tokens, spec.context_length or 1 << 30)
            vocab = await asyncio.to_thread(_remote_vocab, spec)
        except (CatalogError, RemoteError, ModelError) as exc:
            self._drop_engine()  # the previous engine must not be probed back to `ready`
            self._set("error", str(exc))
            return
        self._stop_probing()
        self._adopt(RemoteEngine(client, spec.family, n_ctx, model_id=spec.name, vocab=vocab,
                                 name=spec.name), spec)
        if not s.enable:
            self._set("disabled", DISABLED)
            return
        await self._probe()

    async def _probe(self) -> bool:
        """Ask the remote engine whether it is up; report `ready` or `error` (and keep probing)."""
        remote = self.engine
        if not isinstance(remote, RemoteEngine):
            return False
        try:
            await asyncio.to_thread(remote.probe)
            if not remote.calibrated:
                await asyncio.to_thread(remote.calibrate)
        except RemoteError as exc:
            if remote is self.engine:
                self.engine_failed(exc)
            return False
        if remote is self.engine:
            self._ready()
        return True

    async def _probe_loop(self) -> None:
        while isinstance(self.engine, RemoteEngine) and self._state == "error":
            await asyncio.sleep(defaults.REMOTE_PROBE_INTERVAL_S)
            if isinstance(self.engine, RemoteEngine) and self._state == "error":
                await self._probe()

    def _stop_probing(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None

    def _drop_engine(self) -> None:
        self._stop_probing()
        if isinstance(self.engine, RemoteEngine):
            self.engine.close()
            self.engine = None

    async def _free_local(self) -> None:
        if isinstance(self.engine, LocalEngine):
            self.engine = None
        fut, _ = self.worker.submit(lambda model, cancel: self.worker.set_model(None))
        await asyncio.wrap_future(fut)

    # --- hot reload -------------------------------------------------------------------------------
    def _watch(self, path: Path) -> None:
        """Watch the catalogue files and the model file; reload when what we loaded changed."""
        try:
            files = [*self.catalog().files, path]
            if self._watcher is None:
                loop = asyncio.get_running_loop()
                self._watcher = FileWatcher(loop, self._changed)
            self._watcher.watch(files)
        except Exception:
            log.warning("cannot watch the model files; edits need a restart", exc_info=True)

    def _changed(self) -> None:
        self.tasks.spawn(self.reload_if_changed())

    async def reload_if_changed(self) -> None:
        """models.toml or the model file changed: load again if what we serve is affected."""
        if self._state in ("disabled", "unloaded") or isinstance(self.engine, RemoteEngine):
            return
        try:
            spec = self.catalog().resolve(self.settings.model)
            path = spec.source.path if spec.source.kind == "path" else store.local_path(spec)
        except CatalogError as exc:
            still = f" — still using {self.engine.name}" if self.engine is not None else ""
            self._warn(f"models.toml or the model file changed but cannot be used: {exc}{still}")
            return
        if path is None or _fingerprint_of(spec, Path(path)) != self._fingerprint:
            log.info("model entry or file changed: reloading %s", self.settings.model)
            await self.load()

    # --- idle unload ------------------------------------------------------------------------------
    def touch(self) -> None:
        """Restart the idle clock (a request, an explanation, a load)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        minutes = self.settings.idle_unload_minutes
        if minutes > 0 and isinstance(self.engine, LocalEngine):
            self._idle_timer = asyncio.get_running_loop().call_later(
                minutes * 60, lambda: self.tasks.spawn(self.unload()))

    async def unload(self) -> None:
        """Free the model's memory after the idle time; the next request loads it again."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        async with self._load_lock:
            if not isinstance(self.engine, LocalEngine):
                return
            await self._free_local()
            self._set("unloaded", f"freed after {self.settings.idle_unload_minutes:g} idle minutes;"
                                  " loads again on the next request")

    # --- the end ----------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Stop everything and free the model now (a network session ended; the process lives
        on for the next client, so the weights must not wait for garbage collection)."""
        self.worker.cancel_all()
        fut, _ = self.worker.submit(lambda model, cancel: self.worker.set_model(None))
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), defaults.CLIENT_REQUEST_TIMEOUT_S)
        except Exception:
            log.warning("the model was not freed in time", exc_info=True)
        self.tasks.cancel_all()
        self.shutdown()

    def shutdown(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._watcher is not None:
            self._watcher.stop()
        self._drop_engine()
        self.worker.shutdown()


def _local_file(spec: ModelSpec) -> Path:
    """The verified file, without any download: pulls are explicit (`models pull`)."""
    if spec.source.kind != "path" and not store.is_present(spec):
        raise ModelError(
            f"Model {spec.name} is not downloaded yet. Run `starcoder-lsp models pull "
            f"{spec.name}` ({spec.source.describe()}), or set starcoder.model to a .gguf path."
        )
    return store.verify(spec)


def _fingerprint_of(spec: ModelSpec, path: Path) -> tuple[object, ...]:
    try:
        st = path.stat()
        return (spec, st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        return (spec, None)


def _remote_vocab(spec: ModelSpec) -> Vocab | None:
    """The model's vocabulary when its GGUF is on this machine (exact budgets), else None."""
    path = spec.source.path if spec.source.kind == "path" else store.local_path(spec)
    if path is None or not Path(path).is_file():
        return None
    try:
        return load_vocab(Path(path))
    except Exception as exc:  # a broken file only costs exact counting
        log.warning("cannot read the vocabulary of %s (%s); estimating token counts", path, exc)
        return None
