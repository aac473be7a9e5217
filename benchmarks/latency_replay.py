"""Typing replay: keystroke -> suggestion latency over the real LSP server, vs a naive server.

Opens a real ~8K-token file (the start of the standard library's argparse.py), deletes a few
consecutive lines in the middle, and types them back one character every 150 ms as an editor
sends requests: didChange, cancel the previous inline request, send a new one (automatic trigger).

Reported per server mode:
- time to ghost text: for every keystroke, the time until a suggestion is on screen (the answer to
  that keystroke's request, or, if it was superseded, to the next request that was answered);
- requests answered vs superseded, typed-ahead hits;
- prompt tokens evaluated per keystroke (the engine's counter, via `starcoder/stats`);
- first suggestion after opening the file; peak RSS of the server.
The naive mode (plain PSM over the full window, no KV reuse, no caches) types fewer characters
and waits for each answer: every request costs a full 8K prompt.

    python -m benchmarks.latency_replay [--model NAME] [--lines 3] [--naive-keys 3] [--debounce-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from benchmarks.common import RESULTS_DIR, resolve_model, timestamp, write_results
from lsp_server.driver.session import start_server
from testkit.rawrpc import status_mb

KEY_INTERVAL_S = 0.150  # one character every 150 ms (~80 words per minute)
TARGET_CHARS = 30_000  # ~8K Qwen tokens of Python


def source_text() -> tuple[str, int]:
    """(file text cut at a line boundary near TARGET_CHARS, line in the middle to retype)."""
    import argparse as module

    text = inspect.getsource(module)
    cut = text.rfind("\n", 0, TARGET_CHARS) + 1
    text = text[:cut]
    lines = text.splitlines(keepends=True)
    mid = len(lines) // 2
    while not lines[mid].strip().startswith(("self.", "return", "if ", "for ")):
        mid += 1
    return text, mid


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def rss_peak_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


@dataclass
class Replay:
    keys: int = 0
    answered: int = 0
    superseded: int = 0
    ghost_latency: list[float] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    first_suggestion_s: float = float("nan")
    stats: dict[str, Any] = field(default_factory=dict)
    rss_mb: float = float("nan")
    samples: list[tuple[str, str]] = field(default_factory=list)


def inline_params(uri: str, line: int, col: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri), position=types.Position(line, col),
        context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic))


async def _ask(d: Any, params: types.InlineCompletionParams, debounce_s: float) -> Any:
    """The editor's request for a key: after the client's wait (a debounce), if not cancelled."""
    if debounce_s > 0:
        await asyncio.sleep(debounce_s)
    return await d.client.text_document_inline_completion_async(params)


async def replay(model: str, naive: bool, n_lines: int, max_keys: int | None,
                 log_dir: Path, debounce_s: float = 0.0) -> Replay:
    text, mid = source_text()
    lines = text.splitlines(keepends=True)
    typed = [ln.rstrip("\n") for ln in lines[mid : mid + n_lines]]
    indent = [len(t) - len(t.lstrip()) for t in typed]
    # The document with the lines' contents removed (indentation kept, as an editor auto-indents).
    doc_lines = [*lines[:mid], *(t[:i] + "\n" for t, i in zip(typed, indent, strict=True)),
                 *lines[mid + n_lines :]]
    uri = "file:///bench/argparse_copy.py"
    out = Replay()
    async with start_server(model, log_path=log_dir / f"latency-{'naive' if naive else 'fast'}.log",
                            args=("-v", *(("--naive",) if naive else ()))) as d:
        await d.wait_ready()
        pid = d.pid
        d.open(uri, "".join(doc_lines), "python")
        t0 = time.perf_counter()
        first = await d.inline_item(uri, mid, indent[0])
        out.first_suggestion_s = time.perf_counter() - t0
        out.samples.append(("(open)", first.text))
        version = 1
        pending: asyncio.Future[Any] | None = None
        waiting: list[float] = []  # keystroke times still without a suggestion on screen
        before = (await d.stats())["evaluated"]
        for li, line_text in enumerate(typed):
            col = indent[li]
            for ch in line_text[indent[li] :]:
                if max_keys is not None and out.keys >= max_keys:
                    break
                t_key = time.perf_counter()
                version += 1
                d.change(uri, version, types.Range(types.Position(mid + li, col),
                                                   types.Position(mid + li, col)), ch)
                col += 1
                out.keys += 1
                if pending is not None and not pending.done():
                    pending.cancel()  # the editor cancels the previous request (or its wait)
                    out.superseded += 1
                waiting.append(t_key)
                pending = asyncio.ensure_future(_ask(d, inline_params(uri, mid + li, col), debounce_s))

                def on_done(f: asyncio.Future[Any], line: str = line_text[:col]) -> None:
                    if f.cancelled() or f.exception() is not None:
                        return
                    now = time.perf_counter()
                    out.answered += 1
                    out.ghost_latency.extend(now - t for t in waiting)
                    waiting.clear()
                    res = f.result()
                    items = res.items if isinstance(res, types.InlineCompletionList) else []
                    if items and len(out.samples) < 40:
                        out.samples.append((line, str(items[0].insert_text)))

                pending.add_done_callback(on_done)
                if naive:  # the naive server is far too slow to type over: wait for it
                    with contextlib.suppress(Exception):
                        await pending
                else:
                    await asyncio.sleep(max(0.0, t_key + KEY_INTERVAL_S - time.perf_counter()))
                now_eval = (await d.stats())["evaluated"]
                out.evaluated.append(now_eval - before)
                before = now_eval
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pending, 600)
        out.stats = await d.stats()
        out.rss_mb = rss_peak_mb(pid)
    return out


def summary(name: str, r: Replay) -> dict[str, Any]:
    lat = r.ghost_latency
    return {
        "mode": name, "keystrokes": r.keys, "answered": r.answered, "superseded": r.superseded,
        "ghost_p50_s": round(percentile(lat, 0.5), 3), "ghost_p95_s": round(percentile(lat, 0.95), 3),
        "ghost_max_s": round(max(lat), 3) if lat else None,
        "evaluated_per_key_median": statistics.median(r.evaluated) if r.evaluated else None,
        "evaluated_per_key_mean": round(statistics.fmean(r.evaluated), 1) if r.evaluated else None,
        "typed_ahead_hits": r.stats.get("typedAheadHits"), "cache_hits": r.stats.get("cacheHits"),
        "first_suggestion_s": round(r.first_suggestion_s, 2), "peak_rss_mb": round(r.rss_mb),
    }


async def main_async(args: argparse.Namespace) -> None:
    model, _ = resolve_model(args.model)
    stamp = timestamp()
    log_dir = RESULTS_DIR / f"latency-{stamp}"
    fast = await replay(model, False, args.lines, None, log_dir, args.debounce_ms / 1000)
    rows = [summary("fast" if not args.debounce_ms else f"fast, debounce {args.debounce_ms:g} ms", fast)]
    if args.naive_keys > 0:
        naive = await replay(model, True, 1, args.naive_keys, log_dir)
        rows.append(summary("naive", naive))
    for row in rows:
        print(json.dumps(row))
    if len(rows) == 2 and rows[0]["ghost_p50_s"]:
        print(f"p50 ratio naive/fast: {rows[1]['ghost_p50_s'] / rows[0]['ghost_p50_s']:.1f}x")
    print("samples (typed line so far -> suggestion):")
    for line, sug in fast.samples[:15]:
        print(f"  {line.strip()[-40:]!r:44} -> {sug[:60]!r}")
    print(f"results: {write_results('latency', stamp, {'rows': rows, 'samples': fast.samples})}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--lines", type=int, default=3, help="consecutive lines to retype")
    p.add_argument("--debounce-ms", type=float, default=0.0,
                   help="the client waits this long after a key before asking (as a debounce does)")
    p.add_argument("--naive-keys", type=int, default=3,
                   help="keystrokes replayed on the naive server (each costs a full prompt)")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
