"""Generation on a remote engine over streamed HTTP: llama.cpp's `llama-server`, or any
OpenAI-compatible `/v1/completions` (vLLM, TGI, Ollama, llama-cpp-python's own server).

Only generation moves: the windows, the FIM layout, the stop rules and post-processing stay in this
process and are the same as for the local engine. Why stdlib `http.client`: a streamed response is
read line by line from a socket we own, so a superseded or cancelled request shuts that socket down
from the event loop's thread (`CancelFlag.on_set`); the engine sees the disconnect at its next token
and stops generating (llama-server, vLLM and llama-cpp-python's server all check). No new dependency.

The API key is read from the environment variable the `apiKeyEnv` setting names (only a
`STARCODER_*` name, checked again here), at request time, and only ever goes into the
`Authorization` header: never into a log, a status or an error message. Over plain `http` it is
sent only to a loopback engine: anywhere else anyone on the path could read it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import os
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lsp_server import defaults
from lsp_server.engine.generate import Cancelled, Generation
from lsp_server.engine.worker import CancelFlag
from lsp_server.hosts import is_loopback
from lsp_server.prompt.fim import FimIds
from lsp_server.settings import API_KEY_ENV

if TYPE_CHECKING:
    from lsp_server.models.spec import Family

log = logging.getLogger(__name__)

OPENAI = "openai"
LLAMA_SERVER = "llama-server"
# Status codes worth retrying: the engine or the load balancer in front of it is busy or moving.
RETRY_STATUS = frozenset({408, 429, 502, 503, 504})
# OpenAI-style APIs (TGI validates it) accept at most this many stop strings; we cut the rest
# ourselves, and the engine stops at end-of-text anyway.
MAX_STOP_STRINGS = 4


class RemoteError(Exception):
    """The engine cannot be used now; the message names the URL and the reason (never the key)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


# --- pure helpers ---------------------------------------------------------------------------------
def api_root(endpoint: str, flavour: str) -> str:
    """The base URL requests are built on, without a trailing slash.

    openai: the OpenAI base URL (`…/v1`, as the OpenAI SDK's base_url); a bare host gets `/v1`.
    llama-server: its native routes live at the root, so a `/v1` the user copied is dropped.
    """
    text = endpoint.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"starcoder.endpoint must be an http(s) URL, got {endpoint!r}")
    path = parts.path.rstrip("/")
    if flavour == OPENAI and not path:
        path = "/v1"
    if flavour == LLAMA_SERVER and path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def join_url(root: str, route: str) -> str:
    """`root` + `route` (`route` relative to the root, e.g. "completions" or "/infill")."""
    return f"{root}/{route.lstrip('/')}"


def server_root(root: str) -> str:
    """Scheme and host only: vLLM and llama-cpp-python serve /tokenize beside /v1, not under it."""
    parts = urllib.parse.urlsplit(root)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def parse_sse(lines: Iterable[bytes]) -> Iterator[str]:
    """The `data` payloads of a server-sent event stream, until `[DONE]` or the stream ends.

    Multi-line data fields are joined with newlines (the SSE rule); comments (`: ping`), `event:`
    and `id:` fields are ignored. Also accepts a plain JSON-lines stream (no `data:` prefix).
    """
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    return
                yield payload
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif name not in ("event", "id", "retry") and line.lstrip().startswith("{"):
            yield line  # JSON lines
    if data:
        payload = "\n".join(data)
        if payload.strip() != "[DONE]":
            yield payload


def backoff_delays(retries: int, base: float = defaults.REMOTE_BACKOFF_BASE_S,
                   cap: float = defaults.REMOTE_BACKOFF_CAP_S,
                   rand: Callable[[], float] = random.random) -> list[float]:
    """Seconds to wait before each retry: exponential, capped, with "equal jitter" (half fixed,
    half random) so clients of one engine spread out but never retry at once."""
    out = []
    for n in range(max(0, retries)):
        d = min(cap, base * 2**n)
        out.append(d / 2 + rand() * d / 2)
    return out


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i != -1), default=-1)
    return (text[:cut], True) if cut != -1 else (text, False)


def neutralize(text: str, markers: Iterable[str]) -> str:
    """User text with control-marker strings broken (a zero-width space after the first
    character): a text prompt is parsed for special tokens by the engine, so a file containing
    `<fim_middle>` must not inject the marker."""
    for m in markers:
        if m and m in text:
            text = text.replace(m, m[0] + "\u200b" + m[1:])
    return text


def fim_strings(family: Family) -> FimIds[str]:
    """The family's FIM markers as text pieces, for prompts sent as text."""
    return FimIds(
        family.fim_prefix, family.fim_suffix, family.fim_middle, family.fim_pad, family.repo_name,
        family.file_sep, family.filename, frozenset(family.stop),
        tuple(s for s in family.stop[:1] if s),  # the end-of-text string that separates documents
    )


def openai_body(model: str | None, prompt: str, max_tokens: int, temperature: float,
                stop: Sequence[str]) -> dict[str, Any]:
    # repeat_penalty: llama-cpp-python's server defaults to 1.1, which penalizes reusing the
    # identifiers of the context (what code completion is about); other engines ignore the field.
    body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens,
                            "temperature": temperature, "stream": True, "repeat_penalty": 1.0}
    if model:
        body["model"] = model
    if stop:
        body["stop"] = list(stop[:MAX_STOP_STRINGS])
    return body


def infill_body(prefix: str, suffix: str, extra: Sequence[tuple[str, str]], max_tokens: int,
                temperature: float, stop: Sequence[str]) -> dict[str, Any]:
    """llama-server `/infill`: it lays out the FIM prompt itself from the model's own FIM tokens,
    with the other files as repo-level context (`input_extra`), and keeps the slot's KV cache
    (`cache_prompt`)."""
    return {
        "input_prefix": prefix, "input_suffix": suffix, "prompt": "",
        "input_extra": [{"filename": path, "text": text} for path, text in extra],
        "n_predict": max_tokens, "temperature": temperature, "stream": True,
        "cache_prompt": True, "id_slot": defaults.LLAMA_SERVER_SLOT, "stop": list(stop),
    }


def completion_body(prompt: str, max_tokens: int, temperature: float,
                    stop: Sequence[str]) -> dict[str, Any]:
    """llama-server `/completion` with our own prompt text (explanations; FIM when /infill is
    missing)."""
    return {"prompt": prompt, "n_predict": max_tokens, "temperature": temperature,
            "stream": True, "cache_prompt": True, "id_slot": defaults.LLAMA_SERVER_SLOT, "stop": list(stop)}


def event_text(event: dict[str, Any]) -> tuple[str, bool]:
    """(text, finished) of one streamed event of either flavour."""
    if "choices" in event:  # OpenAI
        choices = event.get("choices") or [{}]
        first = choices[0] if isinstance(choices[0], dict) else {}
        return str(first.get("text") or ""), first.get("finish_reason") is not None
    if "error" in event:
        err = event["error"]
        detail = err.get("message", err) if isinstance(err, dict) else err
        raise RemoteError(f"the engine reported an error: {detail}")
    return str(event.get("content") or ""), bool(event.get("stop"))


def _finish_reason(event: dict[str, Any]) -> str:
    """OpenAI `finish_reason` or llama-server `stop_type` of a final event."""
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return str(choices[0].get("finish_reason") or "")
    return str(event.get("stop_type") or "")


# --- HTTP -----------------------------------------------------------------------------------------
class Opened(NamedTuple):
    conn: http.client.HTTPConnection
    resp: http.client.HTTPResponse
    unregister: Callable[[], None]  # stop closing the socket on cancel


@dataclass
class Limits:
    connect_timeout_s: float = defaults.REMOTE_CONNECT_TIMEOUT_S
    read_timeout_s: float = defaults.REMOTE_READ_TIMEOUT_S
    retries: int = defaults.REMOTE_RETRIES


class RemoteClient:
    """JSON and streamed-JSON requests to one engine, with timeouts and retries with backoff."""

    def __init__(self, flavour: str, endpoint: str, api_key_env: str | None,
                 limits: Limits | None = None,
                 sleep: Callable[[float, threading.Event | None], None] | None = None) -> None:
        self.flavour = flavour
        self.root = api_root(endpoint, flavour)
        if api_key_env is not None and not API_KEY_ENV.fullmatch(api_key_env):
            raise RemoteError(f"starcoder.apiKeyEnv {api_key_env!r} is refused: only variables "
                              "named STARCODER_… are read")
        parts = urllib.parse.urlsplit(self.root)
        if "@" in parts.netloc:
            raise RemoteError("starcoder.endpoint must not contain a user name or password")
        self.api_key_env = api_key_env
        # Why the key is not sent (None: it is): plain http leaves this machine unencrypted.
        self.key_withheld: str | None = None
        if api_key_env and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            self.key_withheld = (f"the API key ({api_key_env}) is not sent over plain http to "
                                 f"{parts.hostname}; use an https:// endpoint")
            log.warning("%s", self.key_withheld)
        self.limits = limits or Limits()
        self._sleep = sleep or (lambda s, cancel: cancel.wait(s) if cancel else time.sleep(s))

    def __repr__(self) -> str:  # never shows the key
        return f"RemoteClient({self.flavour}, {self.root})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.api_key_env and self.key_withheld is None:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise RemoteError(f"the environment variable {self.api_key_env} (starcoder.apiKeyEnv) "
                                  "is not set; it must hold the engine's API key")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(self, method: str, url: str, body: dict[str, Any] | None,
              cancel: threading.Event | None = None) -> Opened:
        """One attempt: connect, send, read the status line; raise RemoteError on failure.

        From the moment the socket exists, setting `cancel` shuts it down: llama-server sends its
        headers only with the first token, so a cancel may come while we wait for them.
        """
        parts = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.limits.connect_timeout_s)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        unregister: Callable[[], None] = lambda: None  # noqa: E731

        def fail(exc: BaseException) -> BaseException:
            unregister()
            conn.close()
            return Cancelled() if cancel is not None and cancel.is_set() else exc

        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(self.limits.read_timeout_s)
            if isinstance(cancel, CancelFlag):
                unregister = cancel.on_set(lambda: _shutdown(conn))
            conn.request(method, target, body=data, headers=self._headers())
            resp = conn.getresponse()
        except RemoteError as exc:
            raise fail(exc) from None
        except TimeoutError as exc:
            raise fail(RemoteError(f"no answer from {url} within {self.limits.read_timeout_s:g} s "
                                   f"({exc or 'timed out'})", True)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise fail(RemoteError(f"cannot reach {url}: {_reason(exc)}", True)) from None
        if resp.status >= 400:
            try:
                detail = resp.read(400).decode("utf-8", "replace").strip()
            except (OSError, http.client.HTTPException):
                detail = ""
            withheld = (f" ({self.key_withheld})" if self.key_withheld and resp.status in (401, 403)
                        else "")
            raise fail(RemoteError(f"{url} answered HTTP {resp.status} {resp.reason}"
                                   + (f": {detail[:200]}" if detail else "") + withheld,
                                   resp.status in RETRY_STATUS))
        return Opened(conn, resp, unregister)

    def _open_with_retries(self, method: str, url: str, body: dict[str, Any] | None,
                           cancel: threading.Event | None) -> Opened:
        delays = backoff_delays(self.limits.retries)
        for attempt in range(len(delays) + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled
            try:
                return self._open(method, url, body, cancel)
            except RemoteError as exc:
                if not exc.retryable or attempt == len(delays):
                    raise
                log.debug("%s; retry %d in %.2f s", exc, attempt + 1, delays[attempt])
                self._sleep(delays[attempt], cancel)
        raise AssertionError("unreachable")

    def get_json(self, route: str, body: dict[str, Any] | None = None, *, root: str | None = None,
                 retries: bool = True) -> Any:
        """GET (or POST when `body` is given) a JSON answer."""
        url = join_url(root or self.root, route)
        method = "POST" if body is not None else "GET"
        conn, resp, _ = (self._open_with_retries(method, url, body, None) if retries
                         else self._open(method, url, body))
        try:
            raw = resp.read(defaults.REMOTE_MAX_JSON_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"cannot read the answer of {url}: {_reason(exc)}", True) from None
        finally:
            conn.close()
        if len(raw) > defaults.REMOTE_MAX_JSON_BYTES:
            raise RemoteError(f"{url} answered more than {defaults.REMOTE_MAX_JSON_BYTES} bytes")
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise RemoteError(f"{url} did not answer JSON") from None

    def stream(self, route: str, body: dict[str, Any], cancel: threading.Event | None
               ) -> Generator[dict[str, Any], None, None]:
        """The JSON events of a streamed answer. Closing the iterator (or setting `cancel`) closes
        the connection, which is what tells the engine to stop generating."""
        url = join_url(self.root, route)
        conn, resp, unregister = self._open_with_retries("POST", url, body, cancel)
        deadline = time.monotonic() + defaults.REMOTE_MAX_STREAM_S
        events = 0
        try:
            for payload in parse_sse(_lines(resp, url)):
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                events += 1
                if events > defaults.REMOTE_MAX_STREAM_EVENTS or time.monotonic() > deadline:
                    raise RemoteError(f"{url} streamed past the limits ({events} events, "
                                      f"{defaults.REMOTE_MAX_STREAM_S:g} s): closed")
                try:
                    event = json.loads(payload)
                except ValueError:
                    raise RemoteError(f"{url} sent a malformed event: {payload[:100]!r}") from None
                if isinstance(event, dict):
                    yield event
            if cancel is not None and cancel.is_set():
                raise Cancelled
        except TimeoutError:
            raise RemoteError(f"{url} stopped sending for {self.limits.read_timeout_s:g} s",
                              False) from None
        except (OSError, http.client.HTTPException) as exc:
            if cancel is not None and cancel.is_set():
                raise Cancelled from None
            raise RemoteError(f"the stream from {url} broke: {_reason(exc)}") from None
        finally:
            unregister()
            _shutdown(conn)
            conn.close()


def _lines(resp: http.client.HTTPResponse, url: str) -> Iterator[bytes]:
    """The response's lines, each and all together within bounds: an engine that never ends a
    line, or never ends the stream, must not fill our memory."""
    total = 0
    while True:
        line = resp.readline(defaults.REMOTE_MAX_LINE_BYTES + 1)
        if not line:
            return
        total += len(line)
        if len(line) > defaults.REMOTE_MAX_LINE_BYTES or total > defaults.REMOTE_MAX_STREAM_BYTES:
            raise RemoteError(f"{url} sent an answer past the size limits "
                              f"({defaults.REMOTE_MAX_LINE_BYTES} bytes a line, "
                              f"{defaults.REMOTE_MAX_STREAM_BYTES} in all): closed")
        yield line


def _shutdown(conn: http.client.HTTPConnection) -> None:
    """Close the socket at once, even while another thread is blocked reading it."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the engine running?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the engine"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the engine closed the connection"
    return str(exc) or type(exc).__name__


# --- token counting -------------------------------------------------------------------------------
@dataclass
class Vocab:
    """The model's own tokenizer, loaded vocab-only (no weights): exact budgets, no round trip."""

    weights: Any
    chat_template: str | None = None
    bos_text: str = ""
    eos_text: str = ""

    def count(self, text: str) -> int:
        from lsp_server.engine.model import tokenize

        return len(tokenize(self.weights.vocab, text, special=False)) if text else 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.weights.close()


def load_vocab(path: Path) -> Vocab:
    """Read only the GGUF's vocabulary and chat template (milliseconds to ~1 s, a few MB)."""
    import llama_cpp
    from llama_cpp import _internals, _logger

    from lsp_server.engine.model import pieces_text

    _logger.set_verbose(False)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    weights = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
    vocab = Vocab(weights)
    template = llama_cpp.llama_model_chat_template(weights.model, None)
    if template:
        vocab.chat_template = template.decode("utf-8", "replace")
        vocab.bos_text = pieces_text(weights.vocab, llama_cpp.llama_vocab_bos(weights.vocab))
        vocab.eos_text = pieces_text(weights.vocab, llama_cpp.llama_vocab_eos(weights.vocab))
    return vocab


# A mixed sample of code and prose: the server's tokenizer on it calibrates the estimate.
_CALIBRATION_TEXT = '''def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


class Cache(dict):
    def __missing__(self, key):
        value = self[key] = compute(key)  # computed once
        return value
'''


def server_tokens(client: RemoteClient, model_id: str | None, text: str) -> int | None:
    """Tokens of `text` by the engine's own tokenizer, or None if it has no tokenize route
    (llama-server: /tokenize; vLLM: /tokenize; llama-cpp-python: /extras/tokenize)."""
    root = server_root(client.root)
    tries: list[tuple[str, dict[str, Any]]] = [
        ("/tokenize", {"content": text, "prompt": text, "add_special": False,
                       **({"model": model_id} if model_id else {})}),
        ("/extras/tokenize", {"input": text, **({"model": model_id} if model_id else {})}),
    ]
    for route, body in tries:
        try:
            answer = client.get_json(route, body, root=root, retries=False)
        except RemoteError:
            continue
        if isinstance(answer, dict):
            if isinstance(answer.get("tokens"), list):
                return len(answer["tokens"])
            if isinstance(answer.get("count"), int):
                return int(answer["count"])
    return None


# --- the remote "model" the prompt pipeline sees ------------------------------------------------------
@dataclass
class RemoteModel:
    """What the shared prompt pipeline needs from a model (`fim`, `tokenize`, `count`, `n_ctx`,
    `measure`), with text pieces instead of token ids, plus generation over HTTP."""

    client: RemoteClient
    family: Family
    n_ctx: int
    model_id: str | None = None  # the engine's name for the model (OpenAI `model` field)
    vocab: Vocab | None = None
    chars_per_token: float = defaults.CHARS_PER_TOKEN_ESTIMATE
    counting: str = "estimate"  # "vocabulary" | "server tokenizer" | "estimate" (for the status)
    fim: FimIds[str] = field(init=False)
    infill_missing: bool = False  # llama-server without /infill: use /completion with our prompt
    calibrated: bool = False

    def __post_init__(self) -> None:
        self.fim = fim_strings(self.family)
        self._markers = tuple(sorted({*self.family.fim_markers, *self.family.optional_markers,
                                      *self.family.stop, "<|im_start|>", "<|im_end|>"} - {""}))

    # --- the prompt pipeline's model interface ---
    def tokenize(self, text: str) -> list[str]:
        """User text as one piece, with control markers neutralized (it is sent as text)."""
        return [neutralize(text, self._markers)] if text else []

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self.vocab is not None:
            return self.vocab.count(text)
        return math.ceil(len(text) / self.chars_per_token)

    def measure(self, pieces: Sequence[str]) -> int:
        """Tokens of a text-piece prompt: one per marker, counted text for the rest."""
        markers = {self.fim.prefix, self.fim.suffix, self.fim.middle, self.fim.repo_name,
                   self.fim.file_sep, self.fim.filename, *self.fim.document_end}
        return sum(1 if p in markers else self.count(p) for p in pieces)

    def close(self) -> None:
        if self.vocab is not None:
            self.vocab.close()

    # --- engine ---
    def probe(self) -> None:
        """Check the engine answers (and learn its model name); raise RemoteError if not."""
        if self.client.flavour == LLAMA_SERVER:
            self.client.get_json("/health", retries=False)
            return
        answer = self.client.get_json("models", retries=False)
        models = answer.get("data") if isinstance(answer, dict) else None
        ids = [m.get("id") for m in models or [] if isinstance(m, dict)]
        ids = [i for i in ids if isinstance(i, str)]
        if ids and self.model_id not in ids:
            self.model_id = ids[0]

    def calibrate(self) -> None:
        """Without the vocabulary, learn chars/token from the server's tokenizer (one request)."""
        self.calibrated = True
        if self.vocab is not None:
            self.counting = "vocabulary"
            return
        n = server_tokens(self.client, self.model_id, _CALIBRATION_TEXT)
        if n:
            self.chars_per_token = len(_CALIBRATION_TEXT) / n * 0.9  # 10 % margin: per-line text varies
            self.counting = "server tokenizer"
        else:
            self.counting = "estimate"

    def stream_text(self, route: str, body: dict[str, Any], cancel: threading.Event | None, *,
                    stops: Sequence[str], heal: str = "", should_stop: Callable[[str], bool] | None = None,
                    time_budget_s: float | None = None, on_text: Callable[[str], None] | None = None,
                    ) -> Generation:
        """Stream one generation; stop (closing the stream) as soon as the text is complete."""
        t0 = time.perf_counter()
        text, reason, pieces, first = "", "max_tokens", 0, None
        events = self.client.stream(route, body, cancel)
        try:
            for event in events:
                piece, finished = event_text(event)
                if first is None:
                    first = time.perf_counter()
                if piece:
                    pieces += 1
                    text += piece
                    if len(text) > defaults.REMOTE_MAX_TEXT_CHARS:
                        text, reason = text[: defaults.REMOTE_MAX_TEXT_CHARS], "max_tokens"
                        break
                    text, hit = cut_at_stop(text, stops)
                    if hit:
                        reason = "eos"
                        break
                    if on_text is not None:
                        on_text(text)
                    if heal and not (text.startswith(heal) or heal.startswith(text)):
                        reason = "stop"  # healing failed: the suggestion is dropped anyway
                        break
                    body_text = text[len(heal):] if len(text) >= len(heal) else ""
                    if should_stop is not None and body_text and should_stop(body_text):
                        reason = "stop"
                        break
                    # The budget runs from the first token: the engine's queue and prompt
                    # evaluation are not time spent producing lines the user may not want.
                    if (time_budget_s is not None and "\n" in piece and body_text.strip()
                            and time.perf_counter() - (first or t0) > time_budget_s):
                        reason = "time"
                        break
                if finished:
                    reason = "max_tokens" if _finish_reason(event) in ("length", "limit") else "eos"
                    break
        finally:
            events.close()  # closes the HTTP stream: the engine stops generating
        t1 = time.perf_counter()
        return Generation(text=text, stop_reason=reason, prompt_tokens=0, evaluated=0,
                          generated=pieces, prompt_ms=((first or t1) - t0) * 1000,
                          generate_ms=(t1 - (first or t1)) * 1000)

    def complete(self, prompt: str, *, prefix: str, suffix: str, extra: Sequence[tuple[str, str]],
                 max_tokens: int, temperature: float, heal: str,
                 should_stop: Callable[[str], bool], cancel: threading.Event,
                 time_budget_s: float | None) -> Generation:
        """A FIM completion: our text prompt (openai, llama-server /completion) or llama-server's
        /infill from the window's prefix and suffix and the cross-file snippets."""
        stops = [s for s in self.family.stop if s]
        kw: dict[str, Any] = {"stops": stops, "should_stop": should_stop,
                              "time_budget_s": time_budget_s}
        if self.client.flavour == OPENAI:
            body = openai_body(self.model_id, prompt, max_tokens, temperature, stops)
            return self.stream_text("completions", body, cancel, heal=heal, **kw)
        if not self.infill_missing:
            try:
                body = infill_body(self.tokenize(prefix)[0] if prefix else "",
                                   self.tokenize(suffix)[0] if suffix else "",
                                   [(p, self.tokenize(t)[0] if t else "") for p, t in extra],
                                   max_tokens, temperature, stops)
                gen = self.stream_text("/infill", body, cancel, **kw)
                # /infill saw the whole prefix (no healing): present the text as if the healed
                # characters had been regenerated, as the pipeline expects.
                gen.text = heal + gen.text
                return gen
            except RemoteError as exc:
                if not any(f"HTTP {c}" in str(exc) for c in (404, 501)):
                    raise
                log.warning("%s; using /completion with our own FIM prompt instead", exc)
                self.infill_missing = True
        body = completion_body(prompt, max_tokens, temperature, stops)
        return self.stream_text("/completion", body, cancel, heal=heal, **kw)

    def generate_text(self, prompt: str, *, max_tokens: int, stops: Sequence[str],
                      cancel: threading.Event, on_text: Callable[[str], None] | None,
                      should_stop: Callable[[str], bool] | None) -> Generation:
        """Free text from a raw prompt (explanations), greedy."""
        if self.client.flavour == OPENAI:
            body = openai_body(self.model_id, prompt, max_tokens, 0.0, stops)
            route = "completions"
        else:
            body, route = completion_body(prompt, max_tokens, 0.0, stops), "/completion"
        return self.stream_text(route, body, cancel, stops=(), should_stop=should_stop,
                                on_text=on_text)
