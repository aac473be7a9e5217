"""The completion pipeline behind the protocol: context -> prompt -> engine -> postprocess.

Owns the model's lifecycle state (loading / ready / error / disabled) and reports every change
through one callback, so the LSP server and the CLI share exactly the same behaviour. Everything
that touches the model runs as a job on the single engine worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_server import defaults
from lsp_server.context.blocks import used_definitions
from lsp_server.context.languages import comment, language_of
from lsp_server.context.lines import DocumentLines
from lsp_server.context.snippets import Snippet, SnippetSelector, SourceDoc
from lsp_server.context.window import LineTokenCache, Window, build_window
from lsp_server.engine.cache import SuggestionCache
from lsp_server.engine.generate import Cancelled, Generation, cost, generate, prepare
from lsp_server.engine.model import LoadedModel, LoadOptions, ModelError, load_model
from lsp_server.engine.remote import RemoteClient, RemoteError, RemoteModel, Vocab, load_vocab
from lsp_server.engine.worker import Worker
from lsp_server.models import store
from lsp_server.models.catalog import Catalog, load_catalog
from lsp_server.models.spec import CatalogError, ModelSpec
from lsp_server.models.watch import FileWatcher
from lsp_server.postprocess import Situation, finish, should_stop
from lsp_server.prompt.explain import (
    STOP_STRINGS,
    ExplainRequest,
    base_prompt,
    chat_prompt,
    strip_turns,
    warm_chat_template,
)
from lsp_server.prompt.explain import should_stop as should_stop_explain
from lsp_server.prompt.fim import (
    TEMPLATE_OVERHEAD_TOKENS,
    Header,
    Prompt,
    build_header,
    build_prompt,
    prompt_text,
)
from lsp_server.settings import Settings

log = logging.getLogger(__name__)

# (state, model, message) -> None; state is one of DESIGN.md's starcoder/status states.
StatusCallback = Callable[[str, str, str], None]
# Fault-injection hook for tests: seconds to stall every model load (requests must not wait).
LOAD_DELAY_ENV = "STARCODER_LSP_TEST_LOAD_DELAY_S"
# Benchmark reference: a naive server (plain PSM, full window, no KV reuse, no caches), so the
# latency benchmark can report the ratio in the same run. Never meant for users.
NAIVE_ENV = "STARCODER_LSP_NAIVE"


@dataclass
class Suggestion:
    """What to insert at the cursor, and how it was made (for logs, the CLI and benchmarks)."""

    text: str
    raw: str
    window: Window | None
    prompt_tokens: int
    generation: Generation | None
    snippets: list[Snippet] = field(default_factory=list)
    warm: list[int] | None = None  # full-window prompt to bring into the cache while idle
    from_cache: bool = False  # typed-ahead or a recently seen state: no model call


@dataclass
class CompletionRequest:
    lines: Sequence[str]  # document lines with their endings
    line: int  # 0-based
    column: int  # code points
    uri: str = ""
    language: str = ""
    path: str = ""  # as the model should see it (workspace-relative when possible)
    others: Sequence[SourceDoc] = ()  # other open / recently closed documents
    repo: str = defaults.DEFAULT_REPO_NAME

    def split(self) -> tuple[str, str]:
        """The whole text before and after the cursor (keys for the suggestion cache)."""
        if isinstance(self.lines, DocumentLines):  # two slices of the text, no line strings
            return self.lines.split_at(self.line, self.column)
        line = self.lines[self.line] if self.line < len(self.lines) else ""
        col = min(self.column, len(line))
        before = "".join(self.lines[: self.line]) + line[:col]
        return before, line[col:] + "".join(self.lines[self.line + 1 :])


@dataclass
class _State:
    state: str = "loading"
    model: str = ""
    message: str = ""
    spec: ModelSpec | None = None
    line_tokens: LineTokenCache | None = None
    loaded_settings: tuple[object, ...] = field(default_factory=tuple)


class Assistant:
    """The model-backed features, independent of LSP."""

    def __init__(self, settings: Settings, on_status: StatusCallback | None = None,
                 on_warning: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.worker = Worker()
        self._on_status = on_status or (lambda s, m, msg: None)
        self._on_warning = on_warning or (lambda msg: None)
        self._idle_timer: asyncio.TimerHandle | None = None
        self._st = _State(model=settings.model)
        self._load_lock = asyncio.Lock()
        self.snippets = SnippetSelector()
        self.cache = SuggestionCache()
        self._warm_timer: asyncio.TimerHandle | None = None
        self.naive = os.environ.get(NAIVE_ENV) == "1"
        self._reload_task: asyncio.Future[None] | None = None
        self._loaded_request = ""  # the `model` setting of the model now loaded
        self._fingerprint: tuple[object, ...] = ()
        self._watcher: FileWatcher | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.requests = 0
        self._header_cache: tuple[object, Header[Any]] | None = None
        # backend = llama-server | openai: the engine's client, and the threads that wait on it
        # (their number is the concurrency limit; the local engine's worker stays idle).
        self.remote: RemoteModel | None = None
        self.remote_pool = Worker(defaults.REMOTE_CONCURRENCY, name="remote")
        self._probe_task: asyncio.Future[None] | None = None

    # --- state ------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._st.state

    @property
    def message(self) -> str:
        return self._st.message

    @property
    def ready(self) -> bool:
        return self._st.state == "ready"

    def _set(self, state: str, message: str = "") -> None:
        if (state, message) == (self._st.state, self._st.message):
            return
        self._st.state, self._st.message = state, message
        log.info("status %s: %s %s", state, self._st.model, message)
        self._on_status(state, self._st.model, message)

    # --- loading ----------------------------------------------------------------------------------
    def catalog(self) -> Catalog:
        return load_catalog(models_file=self.settings.models_file)

    def _load_key(self, settings: Settings | None = None) -> tuple[object, ...]:
        s = settings or self.settings
        return (s.model, s.models_file, s.context_tokens, s.threads, s.n_gpu_layers,
                s.memory_policy, s.backend, s.endpoint, s.api_key_env)

    def needs_load(self, settings: Settings) -> bool:
        """Whether adopting `settings` means loading the model (again)."""
        if not settings.enable:
            return False
        changed = self._load_key(settings) != self._st.loaded_settings
        return changed or self._st.state in ("error", "disabled")

    async def apply_settings(self, settings: Settings,
                             load: Callable[[], Awaitable[None]] | None = None) -> None:
        """Adopt new settings; reload the model only when a setting that shapes it changed
        (through `load`, e.g. the server's loader that also reports `$/progress`)."""
        reload = self.needs_load(settings)
        self.settings = settings
        self._touch()  # the idle time may have changed
        if not settings.enable:
            self._set("disabled", "completions are turned off (starcoder.enable)")
            return
        if reload:
            await (load or self.load)()

    async def load(self) -> None:
        """Resolve, verify and load the configured model on the worker; never raises.

        The new model is loaded while the old one keeps serving, then swapped in. If reloading
        the *same* model fails (its file or settings changed), the old one stays and the user is
        told why; a failed switch to another model, or a first load, ends in `error`.
        """
        async with self._load_lock:
            key = self._load_key()
            # Claimed now, so settings that arrive while this load runs do not queue a second one.
            self._st.loaded_settings = key
            if self.settings.backend != "local":
                await self._connect()
                return
            self._drop_remote()
            previous = self._st.spec if self.worker.model is not None else None
            reload_same = previous is not None and self._loaded_request == self.settings.model
            self._st.model = self.settings.model
            self._set("loading", f"loading {self.settings.model}")
            try:
                spec = self.catalog().resolve(self.settings.model)
                spec.require_fim()
                path = await asyncio.to_thread(self._local_file, spec)
                n_ctx = min(self.settings.context_tokens, spec.context_length or 1 << 30)
                options = LoadOptions(n_ctx=n_ctx, n_threads=self.settings.threads,
                                      n_gpu_layers=self.settings.n_gpu_layers,
                                      shrink_to_fit=self.settings.memory_policy == "shrink")

                def job(_: LoadedModel | None, __: threading.Event) -> LoadedModel:
                    time.sleep(float(os.environ.get(LOAD_DELAY_ENV, "0") or 0))
                    t0 = time.perf_counter()
                    model = load_model(path, spec.family, options, spec.name)
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
                if reload_same and previous is not None and self.worker.model is not None:
                    self._st.model = self.settings.model
                    self._warn(f"{reason} — still using {previous.name}")
                    self._set("ready", f"{previous.name} ({previous.family.name})")
                else:
                    self._set("error", reason)
                return
            if model.n_ctx < n_ctx:
                self._warn(f"not enough memory for a {n_ctx}-token context with {spec.name}: "
                           f"using {model.n_ctx} tokens (starcoder.memoryPolicy = shrink)")
            self._st.spec = spec
            self._loaded_request = self.settings.model
            self._fingerprint = self._fingerprint_of(spec, path)
            self._watch(path)
            self._st.line_tokens = LineTokenCache(model.count)
            self.cache.clear()
            if self.settings.enable:
                self._set("ready", f"{spec.name} ({spec.family.name})")
            else:
                self._set("disabled", "completions are turned off (starcoder.enable)")
            self._touch()

    # --- remote engine ------------------------------------------------------------------------------
    async def _connect(self) -> None:
        """backend = llama-server | openai: resolve the model's family (its FIM markers and stop
        strings come from models.toml), set up token counting, and probe the engine."""
        s = self.settings
        self._st.model = s.model
        self._set("loading", f"connecting to {s.endpoint or '(no endpoint)'}")
        fut, _ = self.worker.submit(lambda model, cancel: self.worker.set_model(None))
        await asyncio.wrap_future(fut)  # a local model no longer serves: free its memory
        try:
            if not s.endpoint:
                raise RemoteError(f"starcoder.backend is {s.backend!r} but starcoder.endpoint is "
                                  "not set (e.g. http://gpu-server:8080/v1)")
            client = RemoteClient(s.backend, s.endpoint, s.api_key_env)
            spec = self.catalog().resolve(s.model)
            spec.require_fim()
            n_ctx = min(s.context_tokens, spec.context_length or 1 << 30)
            vocab = await asyncio.to_thread(self._remote_vocab, spec)
        except (CatalogError, RemoteError, ModelError) as exc:
            self._drop_remote()  # the previous engine must not be probed back to `ready`
            self._set("error", str(exc))
            return
        self._drop_remote()
        self.remote = RemoteModel(client, spec.family, n_ctx, model_id=spec.name, vocab=vocab)
        self._st.spec = spec
        self._loaded_request = s.model
        self._st.line_tokens = LineTokenCache(self.remote.count)
        self._header_cache = None
        self.cache.clear()
        if not s.enable:
            self._set("disabled", "completions are turned off (starcoder.enable)")
            return
        await self._probe()

    @staticmethod
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

    def _drop_remote(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        if self.remote is not None:
            self.remote_pool.cancel_all()
            self.remote.close()
            self.remote = None

    async def _probe(self) -> bool:
        """Ask the engine whether it is up; report `ready` or `error` (and keep probing)."""
        remote = self.remote
        if remote is None:
            return False
        try:
            await asyncio.to_thread(remote.probe)
            if not remote.calibrated:
                await asyncio.to_thread(remote.calibrate)
        except RemoteError as exc:
            if remote is self.remote:
                self._remote_failed(exc)
            return False
        if remote is self.remote and self.settings.enable:
            spec = self._st.spec
            name = f"{spec.name} ({spec.family.name})" if spec else self.settings.model
            self._set("ready", f"{name} on {remote.client.root}; budgets by {remote.counting}")
        return True

    def _remote_failed(self, exc: RemoteError) -> None:
        """The engine is down, slow or answering errors: say so, and probe until it is back."""
        self._set("error", f"remote engine: {exc}")
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.ensure_future(self._probe_loop())

    async def _probe_loop(self) -> None:
        while self.remote is not None and self.state == "error":
            await asyncio.sleep(defaults.REMOTE_PROBE_INTERVAL_S)
            if self.remote is not None and self.state == "error":
                await self._probe()

    # --- hot reload ---------------------------------------------------------------------------------
    @staticmethod
    def _fingerprint_of(spec: ModelSpec, path: Path) -> tuple[object, ...]:
        try:
            st = path.stat()
            return (spec, st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            return (spec, None)

    def _watch(self, path: Path) -> None:
        """Watch the catalogue files and the model file; reload when what we loaded changed."""
        try:
            files = [*self.catalog().files, path]
            if self._watcher is None:
                loop = asyncio.get_running_loop()
                self._watcher = FileWatcher(loop, lambda: self._spawn(self.reload_if_changed()))
            self._watcher.watch(files)
        except Exception:
            log.warning("cannot watch the model files; edits need a restart", exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload_if_changed(self) -> None:
        """models.toml or the model file changed: load again if what we serve is affected."""
        if self.state in ("disabled", "unloaded") or self.remote is not None:
            return
        try:
            spec = self.catalog().resolve(self.settings.model)
            path = spec.source.path if spec.source.kind == "path" else store.local_path(spec)
        except CatalogError as exc:
            serving = self._st.spec if self.worker.model is not None else None
            still = f" — still using {serving.name}" if serving is not None else ""
            self._warn(f"models.toml or the model file changed but cannot be used: {exc}{still}")
            return
        if path is None or self._fingerprint_of(spec, Path(path)) != self._fingerprint:
            log.info("model entry or file changed: reloading %s", self.settings.model)
            await self.load()

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        self._on_warning(message)

    # --- idle unload --------------------------------------------------------------------------------
    def _touch(self) -> None:
        """Restart the idle clock (a request, an explanation, a load)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        minutes = self.settings.idle_unload_minutes
        if minutes > 0 and self.worker.model is not None:
            self._idle_timer = asyncio.get_running_loop().call_later(
                minutes * 60, lambda: asyncio.ensure_future(self.unload()))

    async def unload(self) -> None:
        """Free the model's memory after the idle time; the next request loads it again."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        async with self._load_lock:
            if self.worker.model is None:
                return
            fut, _ = self.worker.submit(lambda model, cancel: self.worker.set_model(None))
            await asyncio.wrap_future(fut)
            self._st.line_tokens = None
            self._set("unloaded", f"freed after {self.settings.idle_unload_minutes:g} idle minutes;"
                                  " loads again on the next request")

    @staticmethod
    def _local_file(spec: ModelSpec) -> Path:
        """The verified file, without any download: pulls are explicit (`models pull`)."""
        if spec.source.kind != "path" and not store.is_present(spec):
            raise ModelError(
                f"Model {spec.name} is not downloaded yet. Run `starcoder-lsp models pull "
                f"{spec.name}` ({spec.source.describe()}), or set starcoder.model to a .gguf path."
            )
        return store.verify(spec)

    # --- completion -------------------------------------------------------------------------------
    def _limits(self, spec: ModelSpec) -> tuple[int, float]:
        max_tokens = self.settings.max_tokens or spec.max_tokens
        temperature = (self.settings.temperature if self.settings.temperature is not None
                       else spec.temperature)
        return max_tokens, temperature

    def _header(self, model: LoadedModel | RemoteModel, req: CompletionRequest,
                snippets: list[Snippet]) -> Header[Any]:
        """The cross-file header, re-tokenized only when the snippets or the path change."""
        if not snippets:
            return Header()  # no header without snippets; keeps the cache for the full window
        key = (id(model), req.path, req.repo, tuple(s.key for s in snippets))
        if self._header_cache is not None and self._header_cache[0] == key:
            return self._header_cache[1]
        language = language_of(req.language, req.path)
        header = build_header([(s.path, s.text) for s in snippets], req.path or "untitled",
                              model.fim, model.tokenize, repo=req.repo, comment=comment,
                              language=language)
        self._header_cache = (key, header)
        return header

    def _prompt(self, model: LoadedModel | RemoteModel, req: CompletionRequest, max_tokens: int,
                total: int | None = None) -> tuple[Window, Prompt[Any], list[Snippet]]:
        """The prompt for `req` within `total` tokens (default: the whole context window).

        A small `total` (the quick window) leaves cross-file snippets out: they head the prompt
        and the quick window exists to be cheap.
        """
        count = self._st.line_tokens or LineTokenCache(model.count)
        quick = total is not None
        total = total or model.n_ctx - max_tokens - TEMPLATE_OVERHEAD_TOKENS
        snippets: list[Snippet] = []
        if not quick:
            share = min(defaults.SNIPPET_MAX_TOKENS, int(total * defaults.SNIPPET_SHARE))
            snippets = self.snippets.select(req.uri, req.line, req.lines, req.others, share, count,
                                            language_of(req.language, req.path))
        header = self._header(model, req, snippets)
        header_tokens = len(header.ids) + (count(header.text) if header.text else 0)
        budget = total - header_tokens
        step = defaults.QUICK_WINDOW_LINE_STEP if quick else defaults.WINDOW_LINE_STEP
        for _ in range(3):
            window = build_window(req.lines, req.line, req.column, budget, count, line_step=step)
            prompt: Prompt[Any] = build_prompt(window.prefix, window.suffix, model.fim,
                                               model.tokenize, header=header)
            over = model.measure(prompt.ids) + TEMPLATE_OVERHEAD_TOKENS - total
            if over <= 0:
                log.debug("budget %d: header %d tokens (%d snippets), window %d+%d, max_tokens %d",
                          total, header_tokens, len(snippets), window.prefix_tokens,
                          window.suffix_tokens, max_tokens)
                return window, prompt, snippets
            budget -= over + 16  # per-line counts underestimated the joined text: shrink, retry
        raise ModelError("could not fit the prompt into the context window")

    def complete_job(self, req: CompletionRequest
                     ) -> Callable[[LoadedModel | None, threading.Event], Suggestion | None]:
        """The worker job for one completion (also used directly by tests and benchmarks).

        Uses the full window when its prompt is (nearly) in the KV cache; otherwise answers from
        the quick window now and leaves the full prompt in `Suggestion.warm` for the idle warm-up.
        """
        spec = self._st.spec
        if self.remote is not None:
            return self._remote_job(req, self.remote)

        def job(model: LoadedModel | None, cancel: threading.Event) -> Suggestion | None:
            if model is None or spec is None:
                return None
            max_tokens, temperature = self._limits(spec)
            window, prompt, snippets = self._prompt(model, req, max_tokens)
            slot, warm = model.main, None
            if self.naive:
                model.kv.clear(model.main)
            full_cost = cost(model, model.main, prompt.ids)
            if full_cost > defaults.PROMPT_EVAL_BUDGET_TOKENS and not self.naive:
                q_window, q_prompt, _ = self._prompt(model, req, max_tokens,
                                                     total=defaults.QUICK_WINDOW_TOKENS)
                if cost(model, model.quick, q_prompt.ids) < full_cost:
                    warm = prompt.ids
                    slot, window, prompt, snippets = model.quick, q_window, q_prompt, []
            sit = _situation(req, window)
            gen = generate(
                model, prompt.ids, slot=slot, max_tokens=max_tokens, temperature=temperature,
                heal=prompt.heal, should_stop=lambda t: should_stop(t, sit), cancel=cancel,
                time_budget_s=defaults.GENERATION_BUDGET_S,
                reuse_suffix=spec.family.keep_suffix and not self.naive,
            )
            raw = gen.text
            text = _finish_text(raw, prompt.heal, sit)
            log.debug(
                "completion (%s window): lines %d-%d (%d+%d tokens, cut %s/%s), prompt %d tokens, "
                "evaluated %d%s, generated %d (%s), %.0f+%.0f ms -> %r",
                "full" if slot is model.main else "quick", window.start_line, window.end_line,
                window.prefix_tokens, window.suffix_tokens, window.prefix_cut, window.suffix_cut,
                len(prompt.ids), gen.evaluated, " (suffix kept)" if gen.reused_suffix else "",
                gen.generated, gen.stop_reason, gen.prompt_ms, gen.generate_ms, text,
            )
            if self.naive:
                warm = None
            elif warm is None and model.main.stale_from is not None:
                warm = prompt.ids  # repair the kept (approximate) suffix cells while idle
            return Suggestion(text, raw, window, len(prompt.ids), gen, snippets, warm)

        return job

    def _remote_job(self, req: CompletionRequest, remote: RemoteModel
                    ) -> Callable[[LoadedModel | None, threading.Event], Suggestion | None]:
        """The same pipeline with generation on the remote engine: same windows and FIM layout
        (as text), same stop rule while streaming, same post-processing."""
        spec = self._st.spec

        def job(_: LoadedModel | None, cancel: threading.Event) -> Suggestion | None:
            if spec is None:
                return None
            max_tokens, temperature = self._limits(spec)
            window, prompt, snippets = self._prompt(remote, req, max_tokens)
            sit = _situation(req, window)
            gen = remote.complete(
                prompt_text(prompt), prefix=window.prefix, suffix=window.suffix,
                extra=[(s.path, s.text) for s in snippets], max_tokens=max_tokens,
                temperature=temperature, heal=prompt.heal, should_stop=lambda t: should_stop(t, sit),
                cancel=cancel, time_budget_s=defaults.GENERATION_BUDGET_S)
            text = _finish_text(gen.text, prompt.heal, sit)
            n_prompt = remote.measure(prompt.ids)
            log.debug("remote completion: lines %d-%d (%d+%d tokens), prompt ~%d tokens, %d pieces "
                      "(%s), first after %.0f ms, %.0f ms streaming -> %r", window.start_line,
                      window.end_line, window.prefix_tokens, window.suffix_tokens, n_prompt,
                      gen.generated, gen.stop_reason, gen.prompt_ms, gen.generate_ms, text)
            return Suggestion(text, gen.text, window, n_prompt, gen, snippets, None)

        return job

    def warm_job(self, ids: list[int]) -> Callable[[LoadedModel | None, threading.Event], int]:
        """Background job: bring the full window to `ids` exactly, in small abandonable chunks."""

        def job(model: LoadedModel | None, cancel: threading.Event) -> int:
            if model is None:
                return 0
            done = model.kv.refresh(model.main, cancel, defaults.REFRESH_CHUNK_TOKENS)
            n, _ = prepare(model, model.main, ids, cancel, reuse_suffix=False,
                           chunk=defaults.REFRESH_CHUNK_TOKENS)
            log.debug("warmed the full window: %d tokens evaluated", done + n)
            return done + n

        return job

    def _schedule_warm(self, ids: list[int] | None) -> None:
        if self._warm_timer is not None:
            self._warm_timer.cancel()
            self._warm_timer = None
        if ids is None:
            return

        def start() -> None:
            self._warm_timer = None
            fut, _ = self.worker.submit(self.warm_job(ids), lane="complete")
            fut.add_done_callback(_log_unexpected)

        self._warm_timer = asyncio.get_running_loop().call_later(defaults.REFRESH_IDLE_S, start)

    async def complete(self, req: CompletionRequest) -> Suggestion | None:
        """A suggestion, or None when not ready, disabled, cancelled or superseded."""
        if self.state == "unloaded" and self.settings.enable:
            self._reload_task = asyncio.ensure_future(self.load())  # answer now, load meanwhile
        if not self.ready or not self.settings.enable:
            return None
        self._touch()
        self._schedule_warm(None)  # the user is active: no background work now
        self.requests += 1
        prefix, suffix = req.split()
        cached = None if self.naive else self.cache.lookup(req.uri, prefix, suffix)
        if cached is not None:
            return Suggestion(cached, cached, None, 0, None, [], None, from_cache=True)
        state = self.cache.key(req.uri, prefix, suffix)
        del prefix, suffix  # not held while waiting: many requests may wait at once
        pool = self.worker if self.remote is None else self.remote_pool
        try:
            result = await pool.run(self.complete_job(req), lane="complete")
        except Cancelled:
            return None
        except RemoteError as exc:
            self._remote_failed(exc)
            return None
        if result is not None:
            # A quick-window answer (no cross-file context) serves typed-ahead only: the same
            # state asked again after the warm-up deserves the full window's answer.
            self.cache.store_key(state, result.text, remember=result.warm is None)
            self._schedule_warm(result.warm)
        return result

    # --- explain ----------------------------------------------------------------------------------
    def _explain_prompt(self, model: LoadedModel, req: ExplainRequest) -> list[int]:
        """Token ids of the explanation prompt; the user's code is tokenized as plain text."""
        if model.chat_template:
            try:
                before, code, after = chat_prompt(model.chat_template, req, model.bos_text,
                                                  model.eos_text)
            except Exception as exc:  # a template we cannot render: fall back to the preamble
                log.warning("chat template failed (%s); using the plain preamble", exc)
                before, code, after = base_prompt(req)
        else:
            before, code, after = base_prompt(req)
        return [*model.tokenize_special(before), *model.tokenize(code),
                *model.tokenize_special(after)]

    async def explain(self, lines: Sequence[str], start: int, end: int, *, path: str,
                      language: str, on_text: Callable[[str], None] | None = None,
                      cancel: threading.Event | None = None) -> Explanation:
        """Explain lines [start, end) of a document; streams partial text through `on_text`.

        Runs in slices on the shared worker, so completions that arrive meanwhile pre-empt it
        (they run between two slices) and the explanation resumes from its own KV sequence.
        """
        if not self.ready:
            raise ModelError(f"the model is not ready ({self.state}: {self.message})")
        cancel = cancel or threading.Event()
        self._touch()
        t0 = time.perf_counter()
        end = max(end, start + 1)
        n_lines = max(1, min(end, len(lines)) - start)
        code_lines: list[str] = []  # at most what could fit the token budget, by characters
        chars = 0
        for i in range(start, min(end, len(lines))):
            if chars > defaults.EXPLAIN_SNIPPET_TOKENS * defaults.MAX_CHARS_PER_TOKEN:
                break
            code_lines.append(lines[i])
            chars += len(lines[i])
        definitions = used_definitions(lines, start, start + max(1, len(code_lines)))

        def request(count: Callable[[str], int]) -> ExplainRequest:
            kept, note = code_lines, ""
            while len(kept) > 1 and count("".join(kept)) > defaults.EXPLAIN_SNIPPET_TOKENS:
                kept = kept[: max(1, len(kept) * 3 // 4)]
            if len(kept) < n_lines:
                note = (f"(Only the first {len(kept)} of its {n_lines} lines are shown.)")
            return ExplainRequest("".join(kept), language_of(language, path), path or "untitled",
                                  definitions, note)

        if self.remote is not None:
            return await self._explain_remote(self.remote, request(self.remote.count), on_text,
                                              cancel, t0, n_lines)
        loaded = self.worker.model
        if loaded is not None and loaded.chat_template:  # a slow template must not hold the worker
            await asyncio.to_thread(warm_chat_template, loaded.chat_template, loaded.bos_text,
                                    loaded.eos_text)

        def setup(model: LoadedModel | None, _: threading.Event) -> tuple[list[int], bool]:
            if model is None:
                raise ModelError("the model was unloaded")
            req = request(model.count)
            return self._explain_prompt(model, req), bool(req.truncated_note)

        setup_fut, _ = self.worker.submit(setup)
        prompt, truncated = await asyncio.wrap_future(setup_fut)
        generated: list[int] = []
        text, first_s = "", None
        while len(generated) < defaults.EXPLAIN_MAX_TOKENS:
            ids = prompt + generated

            def step(model: LoadedModel | None, c: threading.Event, ids: list[int] = ids
                     ) -> Generation:
                if model is None:
                    raise ModelError("the model was unloaded")
                return generate(model, ids, slot=model.explain,
                                max_tokens=defaults.EXPLAIN_SLICE_TOKENS, cancel=c,
                                reuse_suffix=False)

            gen = await self.worker.run(step)
            generated += gen.tokens
            if first_s is None:
                first_s = time.perf_counter() - t0
            text = _detok(self.worker.model, generated)
            if on_text is not None:
                on_text(strip_turns(text))
            if gen.stop_reason == "eos" or should_stop_explain(text) or not gen.tokens:
                break
            if cancel.is_set():
                raise Cancelled
        return _explanation(text, truncated, t0, first_s or 0.0, len(generated), n_lines)

    async def _explain_remote(self, remote: RemoteModel, req: ExplainRequest,
                              on_text: Callable[[str], None] | None, cancel: threading.Event,
                              t0: float, n_lines: int) -> Explanation:
        """The same explanation prompt, rendered here as text and streamed from the engine (its
        chat template when the GGUF is on this machine, else the base-model preamble)."""
        before, code, after = base_prompt(req)
        vocab = remote.vocab
        if vocab is not None and vocab.chat_template:
            try:
                before, code, after = await asyncio.to_thread(
                    chat_prompt, vocab.chat_template, req, vocab.bos_text, vocab.eos_text)
            except Exception as exc:
                log.warning("chat template failed (%s); using the plain preamble", exc)
        prompt = before + "".join(remote.tokenize(code)) + after
        loop = asyncio.get_running_loop()
        first: list[float] = []

        def job(_: LoadedModel | None, c: threading.Event) -> Generation:
            def stream(text: str) -> None:  # on this thread, per streamed piece
                if cancel.is_set():  # the user's cancel (progress UI): close the stream now
                    c.set()
                if not first:
                    first.append(time.perf_counter() - t0)
                if on_text is not None:
                    loop.call_soon_threadsafe(on_text, strip_turns(text))

            return remote.generate_text(prompt, max_tokens=defaults.EXPLAIN_MAX_TOKENS,
                                        stops=STOP_STRINGS, cancel=c, on_text=stream,
                                        should_stop=should_stop_explain)

        try:
            gen = await self.remote_pool.run(job)
        except RemoteError as exc:
            self._remote_failed(exc)
            raise ModelError(f"remote engine: {exc}") from None
        if cancel.is_set():
            raise Cancelled
        return _explanation(gen.text, bool(req.truncated_note), t0, first[0] if first else 0.0,
                            gen.generated, n_lines)

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks and bug reports (`starcoder/stats`)."""
        model = self.worker.model
        return {
            "state": self.state, "model": self._st.model, "requests": self.requests,
            "evaluated": model.kv.evaluated_total if model else 0,
            "cacheHits": self.cache.hits, "typedAheadHits": self.cache.typed_ahead_hits,
            "naive": self.naive,
        }

    async def aclose(self) -> None:
        """Stop everything and free the model now (a network session ended; the process lives
        on for the next client, so the weights must not wait for garbage collection)."""
        self.worker.cancel_all()
        fut, _ = self.worker.submit(lambda model, cancel: self.worker.set_model(None))
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), defaults.CLIENT_REQUEST_TIMEOUT_S)
        except Exception:
            log.warning("the model was not freed in time", exc_info=True)
        for task in list(self._tasks):
            task.cancel()
        self.shutdown()

    def shutdown(self) -> None:
        for timer in (self._warm_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        if self._watcher is not None:
            self._watcher.stop()
        self._drop_remote()
        self.remote_pool.shutdown()
        self.worker.shutdown()


def _situation(req: CompletionRequest, window: Window) -> Situation:
    """What post-processing needs to know about the cursor (shared by both backends)."""
    line_text = req.lines[req.line] if req.line < len(req.lines) else ""
    col = min(req.column, len(line_text))
    above = next((ln for ln in reversed(req.lines[max(0, req.line - 50) : req.line])
                  if ln.strip()), "")
    return Situation(line_text[:col], line_text[col:].rstrip("\r\n"), window.suffix, above)


def _finish_text(raw: str, heal: str, sit: Situation) -> str:
    """The suggestion from the generated text: healing checked and removed, rules applied."""
    if heal and not raw.startswith(heal):
        log.debug("token healing failed: %r does not start with %r", raw, heal)
        return ""
    return finish(raw[len(heal):], sit)


@dataclass
class Explanation:
    markdown: str
    first_text_s: float
    total_s: float
    tokens: int
    truncated: bool = False


def _explanation(text: str, truncated: bool, t0: float, first_s: float, tokens: int,
                 n_lines: int) -> Explanation:
    answer = strip_turns(text)
    if len(answer) > defaults.EXPLANATION_MAX_CHARS:
        answer = answer[: defaults.EXPLANATION_MAX_CHARS] + "\n\n_(cut: the explanation was too long)_"
    if truncated:
        answer += "\n\n_(The code was long: only its first part was explained.)_"
    total = time.perf_counter() - t0
    log.info("explained %d lines in %.1f s (first text after %.1f s, %d tokens)", n_lines, total,
             first_s, tokens)
    return Explanation(answer, first_s, total, tokens, truncated)


def _detok(model: LoadedModel | None, ids: list[int]) -> str:
    if model is None:
        return ""
    return b"".join(model.pieces[t] for t in ids).decode("utf-8", "replace")


def _log_unexpected(fut: Any) -> None:
    exc = fut.exception() if not fut.cancelled() else None
    if exc is not None and not isinstance(exc, Cancelled):
        log.error("background job failed", exc_info=exc)

