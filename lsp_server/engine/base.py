"""The one interface every pipeline talks to, whatever runs the model.

`LocalEngine` (llama.cpp in this process) and `RemoteEngine` (llama-server or an OpenAI-style
server) differ only in how a prompt becomes text: both take the prompts the same pipelines build
(token ids locally, text pieces remotely: `fim`, `tokenize` and `measure` hide which), and both stop
a decode by the same `DecodeGuard`. Only the lifecycle manager knows which one it made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lsp_server.engine.kv import Cancelled

if TYPE_CHECKING:
    from lsp_server.models.spec import Family
    from lsp_server.prompt.fim import FimIds

__all__ = ["Cancelled", "ChatTemplate", "DecodeGuard", "Engine", "EngineDown", "FimInput",
           "Generation"]

T = TypeVar("T")
Job = Callable[[threading.Event], T]  # runs on the engine's thread; stops when the event is set


class EngineDown(Exception):
    """The engine cannot serve now (a remote server is down or failing); the lifecycle manager
    reports it and probes until it is back. The message names the cause, never a secret."""


@dataclass
class Generation:
    text: str
    stop_reason: str  # "eos" | "max_tokens" | "stop" | "time"
    prompt_tokens: int
    evaluated: int  # prompt tokens actually run through the model (the rest came from the cache)
    generated: int
    prompt_ms: float
    generate_ms: float
    reused_suffix: bool = False  # the suffix cells were kept through an edit
    tokens: list[int] = field(default_factory=list)  # the generated ids (explanations resume)
    stale: bool = False  # kept cache cells are approximate: worth repairing while idle


@dataclass(frozen=True)
class ChatTemplate:
    """The GGUF's chat template (instruct models) and the texts of its BOS/EOS tokens."""

    source: str
    bos_text: str = ""
    eos_text: str = ""


@dataclass(frozen=True)
class DecodeGuard:
    """When a decode stops, the same for every engine: token healing failed, a post-processing
    rule says the suggestion is complete, or the time budget ran out at a line end."""

    heal: str = ""  # the text the output must start with (removed from the prompt's end)
    should_stop: Callable[[str], bool] | None = None  # asked with the text after `heal`
    time_budget_s: float | None = None  # of decoding: the prompt's cost is already paid

    def check(self, text: str, piece: str, elapsed_s: float) -> str | None:
        """The stop reason for `text` generated so far (`piece` the newest part), or None."""
        heal = self.heal
        if heal and not (text.startswith(heal) or heal.startswith(text)):
            return "stop"  # healing failed: the suggestion is dropped anyway
        body = text[len(heal):] if len(text) >= len(heal) else ""
        if self.should_stop is not None and body and self.should_stop(body):
            return "stop"
        if (self.time_budget_s is not None and "\n" in piece and body.strip()
                and elapsed_s > self.time_budget_s):  # over budget: stop at a line end
            return "time"
        return None


@dataclass(frozen=True)
class FimInput:
    """A built FIM prompt and what it was built from (llama-server's /infill takes the parts)."""

    ids: Sequence[Any]
    prefix: str
    suffix: str
    extra: Sequence[tuple[str, str]] = ()  # cross-file snippets as (path, text)


class Engine(Protocol):
    """What the completion, explain and edit pipelines need from a model."""

    name: str
    family: Family
    n_ctx: int
    fim: FimIds[Any]
    chat: ChatTemplate | None
    # Whether work nobody asked for yet (the line after a suggestion, while it is read) is worth
    # starting: in process it is the user's own idle CPU, given up at the next keystroke; a remote
    # server's every request is load on a machine others may share.
    speculates: bool

    @property
    def description(self) -> str:
        """For the status line: the model, where it runs, how tokens are counted."""

    def tokenize(self, text: str) -> list[Any]:
        """User text: never a control token, whatever it contains."""

    def tokenize_special(self, text: str) -> list[Any]:
        """Our own template text: its markers are control tokens."""

    def count(self, text: str) -> int: ...

    def has_token(self, text: str) -> bool:
        """Whether `text` is one token of the vocabulary (e.g. StarCoder's `<commit_before>`)."""

    def measure(self, ids: Sequence[Any]) -> int:
        """Tokens of a built prompt."""

    def detokenize(self, ids: Sequence[Any]) -> str: ...

    def cost(self, ids: Sequence[Any], slot: str) -> int:
        """Tokens the engine would evaluate for `ids` in `slot` ("main" | "quick"); 0 where this
        process cannot know (a remote engine's cache)."""

    def submit(self, job: Job[T], lane: str | None = None
               ) -> tuple[Future[T], threading.Event]:
        """Queue `job` on the engine's thread(s); a job in a `lane` supersedes the lane's last."""

    async def run(self, job: Job[T], lane: str | None = None) -> T:
        """`submit` and await; raises `Cancelled` when superseded."""

    def complete(self, prompt: FimInput, *, slot: str, max_tokens: int, temperature: float,
                 guard: DecodeGuard, cancel: threading.Event, fresh: bool = False) -> Generation:
        """One FIM completion (call inside a job). `fresh`: no cache reuse (the naive reference)."""

    def warm(self, ids: Sequence[Any], cancel: threading.Event) -> int:
        """Bring the main cache to `ids` while the user pauses (call inside a job); tokens run."""

    async def generate_text(self, ids: Sequence[Any], *, max_tokens: int, stops: Sequence[str],
                            should_stop: Callable[[str], bool],
                            on_text: Callable[[str], None] | None,
                            cancel: threading.Event) -> Generation:
        """Free text (explanations, edits), greedy, pre-emptible by completions; `on_text` gets
        the text so far on the event loop. Raises `Cancelled` once `cancel` is set."""

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None:
        """Stop its jobs and let go of what it holds (sockets; not the local weights, which
        the worker frees when the next model is set)."""
