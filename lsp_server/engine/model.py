"""Loading a GGUF into llama.cpp and reading what FIM needs from its vocabulary.

Every failure a user must act on becomes a `ModelError` whose message says what to do; the server
shows it and keeps running.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_server import defaults
from lsp_server.engine.kv import (
    SEQ_EXPLAIN,
    SEQ_MAIN,
    SEQ_PARK,
    SEQ_QUICK,
    DecodeError,
    KVContext,
    Slot,
)
from lsp_server.prompt.fim import FimIds

if TYPE_CHECKING:
    from lsp_server.models.spec import Family

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


class ModelError(Exception):
    """A model cannot be used; the message is shown to the user as is."""


@dataclass(frozen=True)
class LoadOptions:
    n_ctx: int = defaults.CONTEXT_TOKENS
    n_threads: int = field(default_factory=defaults.default_threads)
    n_gpu_layers: int = defaults.N_GPU_LAYERS
    n_batch: int = defaults.N_BATCH
    shrink_to_fit: bool = False  # lower n_ctx instead of refusing when memory is short
    memory_cap: int | None = None  # bytes a load may use at most (None: what is available)


@dataclass
class LoadedModel:
    """A llama.cpp model + our context, and the token facts the prompt and generator need."""

    weights: Any  # llama_cpp._internals.LlamaModel
    kv: KVContext
    path: Path
    fim: FimIds
    add_bos: int | None  # BOS id to prepend, when the vocabulary asks for one
    pieces: list[bytes]  # text of every token id (empty for control tokens)
    n_ctx: int  # the prompt window (plus generation) a request may use
    gpu_layers: int
    main: Slot = field(default_factory=lambda: Slot(SEQ_MAIN))
    quick: Slot = field(default_factory=lambda: Slot(SEQ_QUICK))
    explain: Slot = field(default_factory=lambda: Slot(SEQ_EXPLAIN))
    chat_template: str | None = None  # the GGUF's tokenizer.chat_template (instruct models)
    bos_text: str = ""
    eos_text: str = ""

    def tokenize_special(self, text: str) -> list[int]:
        """Template text (turn markers are special tokens); never used on user text."""
        return tokenize(self.weights.vocab, text, special=True) if text else []
    _by_first_byte: dict[int, list[int]] | None = None

    def tokenize(self, text: str) -> list[int]:
        """User text to ids with special tokens *off*: file contents can never inject a marker."""
        if not text:
            return []
        return tokenize(self.weights.vocab, text, special=False)

    def count(self, text: str) -> int:
        """Tokens in `text`, without building their list (on a 1 MB line that list alone held the
        GIL, so the event loop, for ~30 ms)."""
        return _tokenized(self.weights.vocab, text, special=False)[1] if text else 0

    def measure(self, ids: Sequence[Any]) -> int:
        """Tokens of a built prompt (the remote engine's text prompts need counting instead)."""
        return len(ids)

    def tokens_starting_with(self, first_byte: int) -> list[int]:
        """Ids whose text starts with `first_byte` (token healing scans only these)."""
        if self._by_first_byte is None:
            index: dict[int, list[int]] = {}
            for tid, piece in enumerate(self.pieces):
                if piece and tid not in self.fim.stop:
                    index.setdefault(piece[0], []).append(tid)
            self._by_first_byte = index
        return self._by_first_byte.get(first_byte, [])

    def reset_cache(self) -> None:
        """Forget every cached token: after a failed job the cache's contents are unknown."""
        for slot in (self.main, self.quick, self.explain):
            self.kv.clear(slot)
        self.kv.rm(SEQ_PARK, -1)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kv.close()
        with contextlib.suppress(Exception):
            self.weights.close()


def _tokenized(vocab: Any, text: str, *, special: bool) -> tuple[Any, int]:
    """llama.cpp's tokens of `text` (a ctypes buffer) and how many there are."""
    import llama_cpp

    data = text.encode("utf-8", "replace")  # JSON can carry lone surrogates ("\ud800")
    size = len(data) + 16
    buf = (llama_cpp.llama_token * size)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, size, False, special)
    if n < 0:  # more tokens than bytes + 16 cannot happen for BPE, but be safe
        size = -n
        buf = (llama_cpp.llama_token * size)()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, size, False, special)
    return buf, max(0, n)


def tokenize(vocab: Any, text: str, *, special: bool) -> list[int]:
    buf, n = _tokenized(vocab, text, special=special)
    return list(buf[:n])


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelError(f"Model file not found: {path}. Run `starcoder-lsp models pull NAME` "
                         "or set starcoder.model to an existing .gguf file.")
    if not path.is_file():
        raise ModelError(f"Model path is not a file: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path.name} is not a GGUF file (it starts with {magic!r}). "
                         "Convert it with llama.cpp's convert_hf_to_gguf.py or pick a .gguf file.")


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_limit(cap: int | None = None) -> int | None:
    """Bytes a load may use: MemAvailable, or `cap` when smaller (`LoadOptions.memory_cap`)."""
    avail = _available_memory()
    if cap is not None:
        avail = cap if avail is None else min(avail, cap)
    return avail


def kv_cache_bytes(path: Path, n_ctx: int) -> int:
    """f16 K+V bytes for `n_ctx` tokens, from the GGUF's shape; a generous constant if unknown."""
    from lsp_server.models.gguf import read_gguf_info

    try:
        info = read_gguf_info(path)
        arch, meta = info.architecture, info.scalars
        layers = int(meta[f"{arch}.block_count"])  # type: ignore[call-overload]
        embd = int(meta[f"{arch}.embedding_length"])  # type: ignore[call-overload]
        heads = int(meta[f"{arch}.attention.head_count"])  # type: ignore[call-overload]
        kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))  # type: ignore[call-overload]
        return layers * n_ctx * 2 * (embd // heads) * kv_heads * 2
    except Exception:
        return n_ctx * defaults.KV_BYTES_PER_TOKEN_ESTIMATE


def fit_context(path: Path, n_ctx: int, shrink: bool, cap: int | None = None) -> int:
    """The context to load with: `n_ctx` if it fits in memory, else a smaller one (`shrink`) or a
    ModelError that says what to do."""
    have = memory_limit(cap)
    fixed = path.stat().st_size + defaults.LOAD_OVERHEAD_BYTES
    if have is None or fixed + kv_cache_bytes(path, n_ctx) <= have:
        return n_ctx
    if shrink:
        per_token = max(1, kv_cache_bytes(path, 1024) // 1024)
        fits = (have - fixed) // per_token // 256 * 256
        if fits >= defaults.MIN_CONTEXT_TOKENS:
            log.warning("not enough memory for a %d-token context with %s: using %d tokens",
                        n_ctx, path.name, fits)
            return int(fits)
    need = fixed + kv_cache_bytes(path, n_ctx)
    raise ModelError(
        f"Not enough memory for {path.name}: it needs about {need / 2**30:.1f} GiB "
        f"(weights + KV cache for {n_ctx} tokens) and {have / 2**30:.1f} GiB is available. "
        "Close other programs, lower starcoder.contextTokens, set starcoder.memoryPolicy to "
        '"shrink", or choose a smaller model.'
    )


def _piece(vocab: Any, tid: int) -> bytes:
    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, tid, buf, len(buf), 0, False)
    return buf.raw[: max(0, n)]


def _single_token(vocab: Any, text: str | None) -> int | None:
    if not text:
        return None
    ids = tokenize(vocab, text, special=True)
    return ids[0] if len(ids) == 1 else None


def resolve_fim_ids(vocab: Any, family: Family, model_name: str) -> FimIds:
    """FIM ids from the GGUF vocabulary, falling back to the family's marker strings."""
    import llama_cpp

    def pick(from_vocab: int, text: str | None) -> int | None:
        return from_vocab if from_vocab >= 0 else _single_token(vocab, text)

    pre = pick(llama_cpp.llama_vocab_fim_pre(vocab), family.fim_prefix)
    suf = pick(llama_cpp.llama_vocab_fim_suf(vocab), family.fim_suffix)
    mid = pick(llama_cpp.llama_vocab_fim_mid(vocab), family.fim_middle)
    if pre is None or suf is None or mid is None:
        markers = " ".join(m for m in (family.fim_prefix, family.fim_suffix, family.fim_middle) if m)
        raise ModelError(
            f"{model_name} cannot fill in the middle: its vocabulary has no single-token FIM "
            f"markers ({markers or 'none known for this family'}). Choose a FIM code model such "
            "as a StarCoder, StarCoder2, Qwen2.5-Coder or DeepSeek-Coder GGUF."
        )
    pad = pick(llama_cpp.llama_vocab_fim_pad(vocab), family.fim_pad)
    rep = pick(llama_cpp.llama_vocab_fim_rep(vocab), family.repo_name)
    sep = pick(llama_cpp.llama_vocab_fim_sep(vocab), family.file_sep)
    filename = _single_token(vocab, family.filename)
    stop = {t for t in (pre, suf, mid, pad, rep, sep, filename) if t is not None}
    eos = llama_cpp.llama_vocab_eos(vocab)
    for tid in (eos, llama_cpp.llama_vocab_eot(vocab)):
        if tid >= 0:
            stop.add(tid)
    for text in family.stop:
        tid = _single_token(vocab, text)
        if tid is not None:
            stop.add(tid)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    stop.update(t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t))
    return FimIds(pre, suf, mid, pad, rep, sep, filename, frozenset(stop),
                  (eos,) if eos >= 0 else ())


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def has_amx(system_info: str) -> bool:
    """Whether this llama.cpp build carries the AMX kernels (its system info says so).

    Their matmul segfaults on the first batched decode of a Q4_K model on Sapphire Rapids-class
    CPUs (seen here; llama.cpp#20824), killing the server. The Makefile builds without them; a
    build that has them is run with its extra (repacked) weight buffers off, which AMX lives in:
    slower, but it does not crash."""
    return "AMX_INT8 = 1" in system_info


def load_model(path: Path, family: Family, options: LoadOptions, name: str = "") -> LoadedModel:
    """Load `path` (into memory, see `defaults.USE_MMAP`) and check it can do FIM; raise ModelError
    with a fix-it message."""
    name = name or path.name
    try:
        return _load_model(path, family, options, name)
    except MemoryError:  # the estimate in `fit_context` was too optimistic (or memory vanished)
        raise ModelError(
            f"Out of memory while loading {name}: close other programs, lower "
            'starcoder.contextTokens, set starcoder.memoryPolicy to "shrink", or choose a smaller '
            "model."
        ) from None


def _load_model(path: Path, family: Family, options: LoadOptions, name: str) -> LoadedModel:
    _check_file(path)
    n_ctx = fit_context(path, options.n_ctx, options.shrink_to_fit, options.memory_cap)
    if n_ctx != options.n_ctx:
        options = dataclasses.replace(options, n_ctx=n_ctx)
    import llama_cpp
    from llama_cpp import _internals, _logger

    _logger.set_verbose(False)  # llama.cpp's own logs: errors only, and never on stdout
    gpu_layers = options.n_gpu_layers
    if gpu_layers < 0:
        gpu_layers = -1 if gpu_offload_supported() else 0
    amx = has_amx(llama_cpp.llama_print_system_info().decode("utf-8", "replace"))
    if amx:
        log.warning("this llama-cpp-python was built with AMX, whose kernels crash on this kind of "
                    "model: running without repacked weights (slower). Rebuild it with `make "
                    "install` (which leaves AMX out) for full speed.")

    def open_weights(layers: int) -> Any:
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0x7FFFFFFF if layers < 0 else layers
        if amx:
            params.use_extra_bufts = False
        # `load_mode` (this llama.cpp has no `use_mmap` field: setting that would be a no-op).
        params.load_mode = (llama_cpp.LLAMA_LOAD_MODE_MMAP if defaults.USE_MMAP
                            else llama_cpp.LLAMA_LOAD_MODE_NONE)
        return _internals.LlamaModel(path_model=str(path), params=params, verbose=False)

    try:
        weights = open_weights(gpu_layers)
    except (ValueError, RuntimeError, OSError) as exc:
        if gpu_layers == 0:
            raise _explain_load_failure(path, name, exc) from exc
        log.warning("GPU load of %s failed (%s); retrying on the CPU", name, exc)
        gpu_layers = 0
        try:
            weights = open_weights(0)
        except (ValueError, RuntimeError, OSError) as exc2:
            raise _explain_load_failure(path, name, exc2) from exc2
    try:
        fim = resolve_fim_ids(weights.vocab, family, name)
        # Room for the main window, the quick window and generation in both.
        cells = (options.n_ctx + defaults.QUICK_WINDOW_TOKENS + 2 * defaults.MAX_GENERATION_CELLS
                 + defaults.EXPLAIN_PROMPT_TOKENS + defaults.EXPLAIN_MAX_TOKENS)
        try:
            kv = KVContext(weights.model, cells, options.n_batch, options.n_threads)
        except DecodeError as exc:
            raise ModelError(
                f"llama.cpp could not create a context of {cells} tokens for {name}: usually a "
                "lack of memory. Lower starcoder.contextTokens or choose a smaller model."
            ) from exc
    except BaseException:
        weights.close()
        raise
    vocab = weights.vocab
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    pieces = [_piece(vocab, t) for t in range(n_vocab)]
    bos = llama_cpp.llama_vocab_bos(vocab)
    add_bos = bos if (llama_cpp.llama_vocab_get_add_bos(vocab) and bos >= 0) else None
    model = LoadedModel(weights, kv, path, fim, add_bos, pieces, options.n_ctx, gpu_layers)
    template = llama_cpp.llama_model_chat_template(weights.model, None)
    if template:
        model.chat_template = template.decode("utf-8", "replace")
        eos = llama_cpp.llama_vocab_eos(vocab)
        model.bos_text = pieces_text(vocab, bos)
        model.eos_text = pieces_text(vocab, eos)
    return model


def pieces_text(vocab: Any, tid: int) -> str:
    """A special token's text (e.g. `<|endoftext|>`), for chat templates."""
    import llama_cpp

    if tid < 0:
        return ""
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, tid, buf, len(buf), 0, True)
    return buf.raw[: max(0, n)].decode("utf-8", "replace")


def _explain_load_failure(path: Path, name: str, exc: Exception) -> ModelError:
    size = path.stat().st_size if path.exists() else 0
    arch = _gguf_architecture(path)
    if "context" in str(exc).lower():
        return ModelError(f"llama.cpp could not create a context for {name} ({exc}); this is "
                          "usually a lack of memory: lower starcoder.contextTokens or use a smaller "
                          "model.")
    hint = "The file may be truncated or corrupt: pull it again."
    if arch and arch not in defaults.KNOWN_ARCHITECTURES:
        hint = (f"Its architecture '{arch}' is not supported by this llama.cpp build: update "
                "llama-cpp-python or choose another model.")
    return ModelError(f"llama.cpp could not load {name} ({size / 2**20:.0f} MiB): {exc}. {hint}")


def _gguf_architecture(path: Path) -> str | None:
    """general.architecture from the GGUF header, for error messages only."""
    from lsp_server.models.gguf import read_gguf_info

    try:
        return read_gguf_info(path).architecture
    except Exception:
        return None
