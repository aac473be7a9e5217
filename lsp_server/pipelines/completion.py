"""Inline completion: context -> prompt -> engine -> postprocess, with the typed-ahead cache, the
quick window for a cold cache, the idle warm-up of the full window, and time-boxed answers: a
block still being generated when the answer budget is spent is answered with its complete lines so
far, and goes on in the background (a request that only types ahead into it waits for it rather
than starting over)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_server import defaults
from lsp_server.context.edits import EditedRange, excerpts
from lsp_server.context.languages import comment, language_of
from lsp_server.context.lines import DocumentLines
from lsp_server.context.snippets import Snippet, SnippetSelector, SourceDoc, identifiers
from lsp_server.context.window import LineTokenCache, Window, build_window
from lsp_server.engine.base import Cancelled, DecodeGuard, Engine, EngineDown, FimInput, Generation
from lsp_server.engine.cache import StateKey, SuggestionCache
from lsp_server.engine.model import ModelError
from lsp_server.lifecycle import ModelManager
from lsp_server.pipelines.timebox import Carry, Continuation, EarlyAnswer
from lsp_server.pipelines.usage import Usage
from lsp_server.postprocess import Situation, finish, should_stop
from lsp_server.prompt.fim import TEMPLATE_OVERHEAD_TOKENS, Header, Prompt, build_header, build_prompt

log = logging.getLogger(__name__)


@dataclass
class Suggestion:
    """What to insert at the cursor, and how it was made (for logs, the CLI and benchmarks)."""

    text: str
    raw: str
    window: Window | None
    prompt_tokens: int
    generation: Generation | None
    snippets: list[Snippet] = field(default_factory=list)
    warm: list[Any] | None = None  # full-window prompt to bring into the cache while idle
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
    edits: Sequence[EditedRange] = ()  # where the user edited lately, newest last

    def split(self) -> tuple[str, str]:
        """The whole text before and after the cursor (keys for the suggestion cache)."""
        if isinstance(self.lines, DocumentLines):  # two slices of the text, no line strings
            return self.lines.split_at(self.line, self.column)
        line = self.lines[self.line] if self.line < len(self.lines) else ""
        col = min(self.column, len(line))
        before = "".join(self.lines[: self.line]) + line[:col]
        return before, line[col:] + "".join(self.lines[self.line + 1 :])


class CompletionPipeline:
    """`naive`: the benchmark's reference (plain PSM, full window, no KV reuse, no caches), so
    the latency replay reports the ratio in the same run. Never meant for users."""

    def __init__(self, manager: ModelManager, naive: bool = False) -> None:
        self.manager = manager
        self.naive = naive
        self.snippets = SnippetSelector()
        self.cache = SuggestionCache()
        self.requests = 0
        self._engine: Engine | None = None  # the engine the caches below belong to
        self._line_tokens: LineTokenCache | None = None
        self._header_cache: tuple[object, Header[Any]] | None = None
        # uri -> the lines its last full window showed (recent edits there are not repeated)
        self._spans: OrderedDict[str, tuple[int, int]] = OrderedDict()
        # uri -> (line, names): the query another file's edits are matched against, and where
        self._queries: OrderedDict[str, tuple[int, frozenset[str]]] = OrderedDict()
        self._warm_timer: asyncio.TimerHandle | None = None
        self._continuation: Continuation | None = None
        self._shown: OrderedDict[int, tuple[CompletionRequest, str]] = OrderedDict()
        self._next_id = 0
        self.usage = Usage()
        self.prefetches = 0
        self._prefetched: StateKey | None = None  # the accepted state last prefetched after
        self.early_answers = 0  # answered with the lines so far, the block going on
        self.joined = 0  # requests answered by a block still going on
        self.carried = 0  # one-line answers whose generation went on into the next line

    def _caches_for(self, engine: Engine) -> LineTokenCache:
        """Per-engine caches, started afresh when the engine changed (a load, a switch)."""
        if engine is not self._engine or self._line_tokens is None:
            self._engine, self._line_tokens = engine, LineTokenCache(engine.count)
            self._header_cache = None
            self.cache.clear()
        return self._line_tokens

    async def complete(self, req: CompletionRequest, *, after: StateKey | None = None,
                       whole: bool = False) -> Suggestion | None:
        """A suggestion, or None when not ready, disabled, cancelled or superseded; within
        `ANSWER_BUDGET_S` whenever at least one line of it exists by then. With `after` (a
        prefetch for the line after an accepted suggestion, the key of the accepted state): the
        editor's request at that accepted state is answered with nothing while this one runs,
        instead of superseding it.
        `whole`: no time box (the command line prints the whole suggestion)."""
        engine = self.manager.serving()
        if engine is None:
            return None
        loop = asyncio.get_running_loop()
        early = EarlyAnswer(loop, defaults.ANSWER_BUDGET_S)
        self._caches_for(engine)
        self._schedule_warm(engine, None)  # the user is active: no background work now
        self.requests += 1
        prefix, suffix = req.split()
        if after is None:  # an editor's request (not a prefetch): it ends what was on screen
            self.usage.request(req.uri, prefix)
        state = self.cache.key(req.uri, prefix, suffix)
        cont = self._continuation
        if (cont is not None and cont.before == state and not cont.job.done()):
            return None  # the accepted line's end: the next line is being prefetched
        cached = None if self.naive else self.cache.lookup(req.uri, prefix, suffix)
        if cached is None and not self.naive:
            cached = await self._join(req.uri, prefix, suffix, early.deadline)
            if cached is not None:  # on screen now: what typing ahead goes into
                self.cache.store(req.uri, prefix, suffix, cached, remember=False)
        if cached is not None:
            return Suggestion(cached, cached, None, 0, None, [], None, from_cache=True)
        del prefix, suffix  # not held while waiting: many requests may wait at once
        if after is None:
            self._prefetched = None  # this job supersedes a prefetch: it may be needed again
        carry = self._carry(engine, req, early, after, whole)
        fut, cancel = engine.submit(
            self.job(engine, req, None if self.naive or whole else early, carry), lane="complete")
        job = asyncio.wrap_future(fut)
        if after is not None:
            self._continue(engine, Continuation(state, job, early, after))
        waiting: set[asyncio.Future[Any]] = {job, early.future}
        timer = loop.call_at(loop.time() + max(0.0, early.deadline - time.perf_counter()),
                             early.deliver)  # the lines that exist at the deadline
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            cancel.set()  # our request was cancelled: so is its job
            raise
        finally:
            timer.cancel()
        if carry is not None and carry.on:
            return self._carried(engine, req, state, job, carry)
        if not job.done():  # the budget is spent and lines exist: answer, let the block go on
            partial = early.future.result()
            self.early_answers += 1
            if after is None:  # (a prefetch's lines are joined through its continuation)
                self.cache.store_key(state, partial, remember=False)
                self._continue(engine, Continuation(state, job, early))
            return Suggestion(partial, partial, None, 0, None)
        if after is not None:
            return None  # landed through the continuation's callback
        return self._landed(engine, state, job)

    def _carry(self, engine: Engine, req: CompletionRequest, early: EarlyAnswer,
               after: StateKey | None, whole: bool) -> Carry | None:
        """A `Carry` for an editor's request in process (its job decides from the situation
        whether the cursor ends a line and the suggestion is one line); else None."""
        if self.naive or whole or after is not None or not engine.speculates:
            return None

        def at_enter(first: str) -> tuple[StateKey, StateKey, str]:
            prefix, suffix = req.split()
            indent = _enter_indent(prefix + first, suffix)
            return (self.cache.key(req.uri, prefix + first, suffix),
                    self.cache.key(req.uri, prefix + first + "\n" + indent, suffix), indent)

        return Carry(early, at_enter)  # the job decides, once it knows the situation

    def _carried(self, engine: Engine, req: CompletionRequest, state: StateKey,
                 job: asyncio.Future[Suggestion | None], carry: Carry) -> Suggestion:
        """Answer a carried request with its first line; what goes on is the prefetch of the
        state after Enter (as `_prefetch` would start when the line is shown). When its next
        line goes another way, the usual prefetch starts at once (the line is still on screen
        unless something was asked since)."""
        assert carry.accepted is not None and carry.entered is not None
        self.carried += 1
        self.prefetches += 1
        self.cache.store_key(state, carry.first, remember=not carry.quick)
        if job.done():
            if (landed := self._landed(engine, carry.entered, job, prefetch=True)) and landed.text:
                self._prefetched = carry.accepted  # else it is prefetched when shown
            return Suggestion(carry.first, carry.first, None, 0, None)
        self._prefetched = carry.accepted
        self._continue(engine, Continuation(carry.entered, job, carry.next, carry.accepted))
        asked = self.requests

        def went_another_way(job: asyncio.Future[Suggestion | None]) -> None:
            if (self.requests == asked and not job.cancelled() and job.exception() is None
                    and not ((result := job.result()) and result.text)
                    and self._prefetched == carry.accepted):
                self._prefetched = None
                self._prefetch(req, carry.first)

        job.add_done_callback(went_another_way)
        return Suggestion(carry.first, carry.first, None, 0, None)

    def shown(self, req: CompletionRequest, text: str, seconds: float) -> int:
        """Remember a suggestion shown for `req`, `seconds` after it was asked for; its id for
        the editor's "accepted" command."""
        self._next_id += 1
        self.usage.answered(req.uri, req.language, _model_label(self.manager.model), seconds)
        self.usage.offered(req.uri, req.split()[0], text)
        self._shown[self._next_id] = (req, text)
        while len(self._shown) > defaults.SHOWN_SUGGESTIONS:
            self._shown.popitem(last=False)
        # Prefetch now: the user reads the suggestion while the next line is made. Never in the
        # way of a block still going on: after it, if it ended with the line shown.
        cont = self._continuation
        if self._engine is None or not self._engine.speculates:
            pass  # a remote engine: the prefetch waits for the accept
        elif cont is None or cont.job.done():
            self._prefetch(req, text)
        elif cont.before is None:
            asked = self.requests

            def after_block(job: asyncio.Future[Suggestion | None]) -> None:
                if (self.requests == asked and not job.cancelled() and job.exception() is None
                        and (result := job.result()) is not None and result.text == text):
                    self._prefetch(req, text)  # nothing asked since: the line is still shown

            cont.job.add_done_callback(after_block)
        return self._next_id

    def accepted(self, item_id: int) -> asyncio.Task[Suggestion | None] | None:
        """The editor accepted suggestion `item_id`: counted, and the line after it prefetched
        unless that already began when it was shown."""
        found = self._shown.pop(item_id, None)
        if found is None:
            return None
        req, text = found
        self.usage.accepted_whole(req.uri, text)
        return self._prefetch(req, text)

    def _prefetch(self, req: CompletionRequest, text: str) -> asyncio.Task[Suggestion | None] | None:
        """When `text` completes the line at `req`, the suggestion for the line after it
        (llama.vim's speculative FIM), so that Enter after accepting finds it ready. Started when
        a suggestion is shown, so the user's reading time pays for it; a keystroke that needs the
        model cancels it (latest wins). The prefetch is where Enter puts the cursor: a new line
        with the accepted line's indentation (one level more after a block opener), as editors
        auto-indent (at column 0 the model may choose another indentation, which the editor's
        then does not type into). None when there is nothing to prefetch or it is under way."""
        if self.naive or text.endswith("\n"):
            return None  # a block ending in a line break: the user is on the next line already
        prefix, suffix = req.split()
        if suffix[:1] not in ("", "\n", "\r"):
            return None  # text right of the cursor: not the end of a line
        done = prefix + text
        after = self.cache.key(req.uri, done, suffix)
        if after == self._prefetched:
            return None  # prefetched when shown (now accepted), or shown again as typed into
        self._prefetched = after
        nxt = done + "\n" + _enter_indent(done, suffix)
        self.prefetches += 1
        log.debug("prefetching the line after %r", text[-40:])
        task = asyncio.ensure_future(self.complete(_request_at(req, nxt, suffix), after=after))
        task.add_done_callback(_log_prefetch_failure)
        return task

    def _landed(self, engine: Engine, state: tuple[str, int, int, int],
                job: asyncio.Future[Suggestion | None], prefetch: bool = False
                ) -> Suggestion | None:
        """A finished job's suggestion, kept for typed-ahead; None when it was superseded. A
        prefetch's is kept for its state only (the user is not there yet: the suggestion on
        screen keeps serving typing ahead), even from the quick window (never asked yet)."""
        if job.cancelled():
            return None
        exc = job.exception()
        if isinstance(exc, EngineDown):
            self.manager.engine_failed(exc)
            return None
        if isinstance(exc, Cancelled):
            return None
        result = job.result()  # any other failure propagates: the handler reports it
        if result is not None:
            # A quick-window answer (no cross-file context) serves typed-ahead only: the same
            # state asked again after the warm-up deserves the full window's answer.
            self.cache.store_key(state, result.text, remember=prefetch or result.warm is None,
                                 shown=not prefetch)
            self._schedule_warm(engine, result.warm)
        return result

    def _continue(self, engine: Engine, cont: Continuation) -> None:
        self._continuation = cont

        def done(_: object) -> None:
            if self._continuation is cont:
                self._continuation = None
            try:
                self._landed(engine, cont.state, cont.job,
                             prefetch=cont.before is not None and not cont.joined)
            except Exception:
                log.exception("a block generated in the background failed")

        cont.job.add_done_callback(done)

    async def _join(self, uri: str, prefix: str, suffix: str, deadline: float) -> str | None:
        """The answer from a block still going on, when the new state only types into it: its
        lines past what was typed by the deadline (a prefetch's at once: the user's reading time
        paid for them), else the whole block once done. None when there is no such block (the
        caller runs the model)."""
        cont = self._continuation
        if cont is None or cont.job.done() or (into := cont.typed_into(uri, prefix, suffix)) is None:
            return None
        if cont.before is not None:  # a prefetch: the user's reading paid for it, show its lines
            if (lines := self._lines_past(cont, into)) is not None:  # at once, or at its next one
                return lines
            if not cont.early.future.done():
                either: set[asyncio.Future[Any]] = {cont.job, cont.early.future}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED,
                                   timeout=max(0.0, deadline - time.perf_counter()))
                into = cont.typed_into(uri, prefix, suffix)
                if into is not None and (lines := self._lines_past(cont, into)) is not None:
                    return lines
        await asyncio.wait({cont.job}, timeout=max(0.0, deadline - time.perf_counter()))
        into = cont.typed_into(uri, prefix, suffix)
        if into is None and not cont.job.done():
            return None  # its lines went another way than the typing: not an answer for it
        typed = into or ""
        if (lines := self._lines_past(cont, typed)) is not None:
            return lines
        # Nothing new yet: its first line (a prefetch's time box is long spent, so the early
        # answer comes with it), else the whole block, is the quickest answer.
        first: set[asyncio.Future[Any]] = {cont.job, cont.early.future}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if (lines := self._lines_past(cont, typed)) is not None:
            return lines
        await asyncio.wait({cont.job})
        hit = self.cache.lookup(uri, prefix, suffix)
        if hit is None and into is not None:  # a quick-window block is kept for typed-ahead
            hit = _rest(cont.job, into)     # only: this request waited for it, so answer it
        return None if hit is None else self._answered_by(cont, hit)

    def _lines_past(self, cont: Continuation, typed: str) -> str | None:
        """The complete lines a block still going on has past `typed`, if it has any yet (then
        they are the request's answer)."""
        shown = cont.early.text()
        if not cont.job.done() and shown.startswith(typed) and len(shown) > len(typed):
            return self._answered_by(cont, shown[len(typed):])
        return None

    def _answered_by(self, cont: Continuation, text: str) -> str:
        """Count a joined answer and mark its block as on screen (no longer an unseen prefetch)."""
        self.joined += 1
        cont.joined = True
        return text

    def job(self, engine: Engine, req: CompletionRequest, early: EarlyAnswer | None = None,
            carry: Carry | None = None) -> Callable[[threading.Event], Suggestion | None]:
        """The engine job for one completion (its lines so far offered to `early`; a one-line
        suggestion carried on into the next line through `carry`, if the situation allows).

        Uses the full window when its prompt is (nearly) in the KV cache; otherwise answers from
        the quick window now and leaves the full prompt in `Suggestion.warm` for the idle warm-up.
        """
        spec = self.manager.spec
        count = self._caches_for(engine)

        def job(cancel: threading.Event) -> Suggestion | None:
            if spec is None:
                return None
            max_tokens = self.manager.settings.max_tokens or spec.max_tokens
            t = self.manager.settings.temperature
            temperature = t if t is not None else spec.temperature
            window, prompt, snippets = self._prompt(engine, count, req, max_tokens)
            slot, warm = "main", None
            full_cost = engine.cost(prompt.ids, "main")
            if full_cost > defaults.PROMPT_EVAL_BUDGET_TOKENS and not self.naive:
                q_cost, q_window, q_prompt = self._quick(engine, count, req, max_tokens)
                if q_cost < full_cost:
                    warm = prompt.ids
                    slot, window, prompt, snippets = "quick", q_window, q_prompt, []
            sit = _situation(req, window)
            going = None if carry is None or early is None else carry.prepare(sit, slot == "quick")
            if early is None:
                def stop(t: str) -> bool:
                    return should_stop(t, sit)
            elif going is None:
                def stop(t: str) -> bool:
                    return early.offer(t, sit) or should_stop(t, sit)
            else:
                def stop(t: str) -> bool:
                    if going.on:
                        return going.stop(t)
                    done = should_stop(t, sit)
                    if done and going.begin(t):
                        return False  # answered with the first line; the next one goes on
                    return early.offer(t, sit) or done
            guard = DecodeGuard(prompt.heal, stop, defaults.GENERATION_BUDGET_S)
            gen = engine.complete(
                FimInput(prompt.ids, window.prefix, window.suffix,
                         [(s.path, s.text) for s in snippets]),
                slot=slot, max_tokens=max_tokens, temperature=temperature, guard=guard,
                cancel=cancel, fresh=self.naive)
            if going is not None and going.on:  # the first line answered: this is the next one's
                text = going.text(gen.text[len(prompt.heal):])
            else:
                text = _finish_text(gen.text, prompt.heal, sit)
            n_prompt = engine.measure(prompt.ids)
            log.debug(
                "completion (%s window, %s): lines %d-%d (%d+%d tokens, cut %s/%s), prompt %d "
                "tokens, evaluated %d%s, generated %d (%s), %.0f+%.0f ms -> %r", slot,
                engine.description, window.start_line,
                window.end_line, window.prefix_tokens, window.suffix_tokens, window.prefix_cut,
                window.suffix_cut, n_prompt, gen.evaluated,
                " (suffix kept)" if gen.reused_suffix else "", gen.generated, gen.stop_reason,
                gen.prompt_ms, gen.generate_ms, text)
            if self.naive:
                warm = None
            elif warm is None and gen.stale:
                warm = prompt.ids  # repair the kept (approximate) suffix cells while idle
            return Suggestion(text, gen.text, window, n_prompt, gen, snippets, warm)

        return job

    def _quick(self, engine: Engine, count: LineTokenCache, req: CompletionRequest,
               max_tokens: int) -> tuple[int, Window, Prompt[Any]]:
        """The cheapest quick window to evaluate (its cost first): the standard one, or when its
        edges moved off the cached one, a slightly larger one that starts where that did."""
        best: tuple[int, Window, Prompt[Any]] | None = None
        for extra in (0, *defaults.QUICK_WINDOW_EXTRA_TOKENS):
            window, prompt, _ = self._prompt(engine, count, req, max_tokens,
                                             total=defaults.QUICK_WINDOW_TOKENS + extra)
            cost = engine.cost(prompt.ids, "quick")
            if best is None or cost < best[0]:
                best = (cost, window, prompt)
            if cost <= defaults.QUICK_WINDOW_CHEAP_TOKENS:
                break
        assert best is not None
        return best

    def _header(self, engine: Engine, req: CompletionRequest,
                snippets: list[Snippet]) -> Header[Any]:
        """The cross-file header, re-tokenized only when the snippets or the path change."""
        if not snippets:
            return Header()  # no header without snippets; keeps the cache for the full window
        key = (req.path, req.repo, tuple(s.key for s in snippets))
        if self._header_cache is not None and self._header_cache[0] == key:
            return self._header_cache[1]
        language = language_of(req.language, req.path)
        header = build_header([(s.path, s.text) for s in snippets], req.path or "untitled",
                              engine.fim, engine.tokenize, repo=req.repo, comment=comment,
                              language=language)
        self._header_cache = (key, header)
        return header

    def _prompt(self, engine: Engine, count: LineTokenCache, req: CompletionRequest,
                max_tokens: int, total: int | None = None
                ) -> tuple[Window, Prompt[Any], list[Snippet]]:
        """The prompt for `req` within `total` tokens (default: the whole context window).

        A small `total` (the quick window) leaves cross-file snippets out: they head the prompt
        and the quick window exists to be cheap.
        """
        quick = total is not None
        total = total or engine.n_ctx - max_tokens - TEMPLATE_OVERHEAD_TOKENS
        snippets: list[Snippet] = []
        edits: list[Snippet] = []
        if not quick:
            share = min(defaults.SNIPPET_MAX_TOKENS, int(total * defaults.SNIPPET_SHARE))
            edit_share = min(defaults.RECENT_EDIT_TOKENS, share // 2)
            snippets = self.snippets.select(req.uri, req.line, req.lines, req.others,
                                            share - edit_share, count,
                                            language_of(req.language, req.path))
            edits = self._recent_edits(req, snippets, edit_share, count)
        step = defaults.QUICK_WINDOW_LINE_STEP if quick else defaults.WINDOW_LINE_STEP
        for _ in range(2):
            context = [*snippets, *edits]
            window, prompt = self._fit(engine, count, req, context, total, step, max_tokens)
            if not quick:
                self._remember_span(req.uri, window)
            if not any(e.path == req.path and e.start_line < window.end_line
                       and window.start_line < e.start_line + e.text.count("\n") for e in edits):
                return window, prompt, context
            # An edit of this file the window shows after all (a jump): not twice in the prompt.
            edits = [e for e in edits if e.path != req.path]
        return window, prompt, [*snippets, *edits]

    def _fit(self, engine: Engine, count: LineTokenCache, req: CompletionRequest,
             context: list[Snippet], total: int, step: int, max_tokens: int
             ) -> tuple[Window, Prompt[Any]]:
        """The window around the cursor in what `total` leaves after the context's header."""
        header = self._header(engine, req, context)
        header_tokens = len(header.ids) + (count(header.text) if header.text else 0)
        budget = total - header_tokens
        for _ in range(3):
            window = build_window(req.lines, req.line, req.column, budget, count, line_step=step)
            prompt: Prompt[Any] = build_prompt(window.prefix, window.suffix, engine.fim,
                                               engine.tokenize, header=header)
            over = engine.measure(prompt.ids) + TEMPLATE_OVERHEAD_TOKENS - total
            if over <= 0:
                log.debug("budget %d: header %d tokens (%d snippets), window %d+%d, max_tokens %d",
                          total, header_tokens, len(context), window.prefix_tokens,
                          window.suffix_tokens, max_tokens)
                return window, prompt
            budget -= over + 16  # per-line counts underestimated the joined text: shrink, retry
        raise ModelError("could not fit the prompt into the context window")

    def _recent_edits(self, req: CompletionRequest, snippets: list[Snippet], budget: int,
                      count: LineTokenCache) -> list[Snippet]:
        """Excerpts of the newest edits; this file's only where its last window did not reach
        (before any window, none: a file just opened has no edits worth its tokens)."""
        span = self._spans.get(req.uri)

        def in_window(start: int, end: int) -> bool:
            return span is None or (start < span[1] and span[0] < end)

        here = SourceDoc(req.uri, req.path, "", language_of(req.language, req.path))
        return excerpts(req.edits, here, req.lines, in_window, req.others, budget, count, snippets,
                        self._edit_query(req) if req.edits else frozenset())

    def _edit_query(self, req: CompletionRequest) -> frozenset[str]:
        """The names around the cursor that another file's edit must share to be shown; kept
        while the cursor stays within SNIPPET_REFRESH_LINES of where it was taken, so typing
        never moves an excerpt in or out of the prompt's head."""
        kept = self._queries.get(req.uri)
        if kept is not None and abs(req.line - kept[0]) < defaults.SNIPPET_REFRESH_LINES:
            return kept[1]
        lo = max(0, req.line - defaults.SNIPPET_QUERY_LINES_BEFORE)
        near = req.lines[lo:req.line + 1 + defaults.SNIPPET_QUERY_LINES_AFTER]
        query = frozenset(identifiers("".join(
            ln for ln in near if len(ln) <= defaults.MATCH_LINE_CHARS)))
        self._queries.pop(req.uri, None)
        self._queries[req.uri] = (req.line, query)
        while len(self._queries) > defaults.RECENT_EDIT_WINDOWS:
            self._queries.popitem(last=False)
        return query

    def _remember_span(self, uri: str, window: Window) -> None:
        self._spans.pop(uri, None)
        self._spans[uri] = (window.start_line, window.end_line)
        while len(self._spans) > defaults.RECENT_EDIT_WINDOWS:
            self._spans.popitem(last=False)

    def _schedule_warm(self, engine: Engine, ids: list[Any] | None) -> None:
        if self._warm_timer is not None:
            self._warm_timer.cancel()
            self._warm_timer = None
        if ids is None:
            return

        def warm(cancel: threading.Event) -> int:
            try:
                n = engine.warm(ids, cancel)
            except Cancelled:
                log.debug("warming the full window: superseded by a request")
                raise
            log.debug("warmed the full window: %d tokens evaluated", n)
            return n

        def start() -> None:
            self._warm_timer = None
            log.debug("warming the full window (%d tokens) while the user is idle", len(ids))
            fut, _ = engine.submit(warm, lane="complete")
            fut.add_done_callback(_log_unexpected)

        self._warm_timer = asyncio.get_running_loop().call_later(defaults.REFRESH_IDLE_S, start)

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "cacheHits": self.cache.hits,
                "typedAheadHits": self.cache.typed_ahead_hits, "earlyAnswers": self.early_answers,
                "joined": self.joined, "carried": self.carried, "prefetches": self.prefetches,
                "naive": self.naive,
                **self.usage.snapshot()}

    def shutdown(self) -> None:
        if self._warm_timer is not None:
            self._warm_timer.cancel()


def _enter_indent(done: str, suffix: str) -> str:
    """The indentation editors type on Enter at the end of `done`'s last line: the line's, one
    level more after a block opener."""
    line = done[done.rfind("\n") + 1:]
    indent = line[:len(line) - len(line.lstrip(" \t"))]
    if Situation.between(line, suffix[:200]).multiline:
        indent += _indent_unit(done, indent)  # a block opener: the body's first line
    return indent


def _indent_unit(prefix: str, indent: str) -> str:
    """One indentation level as the file writes it (a tab, or the smallest step between nearby
    lines), for the line after a block opener; 4 spaces when the file does not tell."""
    if "\t" in indent:
        return "\t"
    widths = {len(ln) - len(ln.lstrip(" ")) for ln in
              prefix[-defaults.INDENT_SAMPLE_CHARS:].split("\n")[1:] if ln.strip()}
    steps = sorted(b - a for a, b in zip(sorted(widths), sorted(widths)[1:], strict=False))
    return " " * (steps[0] if steps and steps[0] <= 8 else 4)


def _rest(job: asyncio.Future[Suggestion | None], typed: str) -> str | None:
    """What a finished block offers after `typed` (typed into it since it was asked for)."""
    if job.cancelled() or job.exception() is not None:
        return None
    result = job.result()
    if result is None or not result.text.startswith(typed) or len(result.text) <= len(typed):
        return None
    return result.text[len(typed):]


def _model_label(model: str) -> str:
    """A model as the stats name it: a catalogue name, or a file's name without `.gguf`."""
    return Path(model).stem if model.endswith(".gguf") else model


def _request_at(req: CompletionRequest, prefix: str, suffix: str) -> CompletionRequest:
    """`req` for the document `prefix + suffix` with the cursor between them, its lines as the
    editor numbers them (as every request's: the windows' grids count from the document's end)."""
    lines = DocumentLines(prefix + suffix, editor=True)
    line = prefix.count("\n")
    column = len(prefix) - (prefix.rfind("\n") + 1)
    return CompletionRequest(lines, line, column, req.uri, req.language, req.path, req.others,
                             req.repo, req.edits)


def _situation(req: CompletionRequest, window: Window) -> Situation:
    """What post-processing needs to know about the cursor."""
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


def _log_unexpected(fut: Any) -> None:
    exc = fut.exception() if not fut.cancelled() else None
    if exc is not None and not isinstance(exc, Cancelled):
        log.error("background job failed", exc_info=exc)


def _log_prefetch_failure(task: asyncio.Task[Any]) -> None:
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        log.error("prefetching the line after a shown suggestion failed", exc_info=exc)
