"""Soak: replayed editing on the real model through the real server, for a long time, with drift.

One server process (`python -m lsp_server serve`, the real model, default threads) and an editor
replay driven over raw JSON-RPC (testkit/rawrpc.py), so every request is accounted for by id:
- an ~8K-token file (argparse.py, as in latency_replay) is opened; then, until time is up, a random
  code line is cleared and typed back one character every 150 ms: didChange, `$/cancelRequest` for
  the previous request if still unanswered, a new inline request (trigger Automatic);
- after each line a pause of a second (the server warms its cache), sometimes a new line typed and
  deleted, and every few lines a second file opened, completed in, and closed.
At the end a known completion is checked (`def add(a, b): return` -> `a + b`).

Reported (printed, and benchmarks/results/soak-STAMP.json): requests sent, answered, cancelled,
errors, unanswered; per bucket (5 minutes by default) the p50/p95 time from a keystroke until the
editor has an answer for it or for a later keystroke (`p50_s`/`p95_s`, as latency_replay's ghost
latency) and of requests answered before being superseded (`answered_*`), and the drift of both
from the first to the last bucket; the server's RSS at start, peak (VmHWM) and end, per
bucket, and its drift.

    python -m benchmarks.soak [--minutes 30] [--bucket-minutes 5] [--model NAME|PATH] [--seed 1]
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import RESULTS_DIR, resolve_model, timestamp, write_results
from benchmarks.latency_replay import KEY_INTERVAL_S, percentile, source_text
from testkit.rawrpc import RawServer

CANCELLED = -32800
PAUSE_AFTER_LINE_S = 1.0
SIDE_FILE_EVERY_LINES = 5
RSS_SAMPLE_S = 10.0
DRAIN_TIMEOUT_S = 120.0
URI = "file:///soak/argparse_copy.py"


@dataclass
class Sent:
    t: float  # time.monotonic() when sent
    cancelled: bool = False


@dataclass
class Soak:
    server: RawServer
    lines: list[str]  # our copy of the document (with line endings)
    version: int = 1
    sent: dict[Any, Sent] = field(default_factory=dict)
    last: Any = None
    rss: list[tuple[float, float]] = field(default_factory=list)  # (t, MB)
    next_rss: float = 0.0

    def change(self, line: int, start: int, end: int, text: str) -> None:
        self.version += 1
        old = self.lines[line]
        self.lines[line] = old[:start] + text + old[end:]
        pos = {"line": line, "character": start}
        self.server.notify("textDocument/didChange", {
            "textDocument": {"uri": URI, "version": self.version},
            "contentChanges": [{"range": {"start": pos, "end": {"line": line, "character": end}},
                                "text": text}]})

    def ask(self, uri: str, line: int, col: int) -> None:
        """What an editor does on a keystroke: cancel the previous request, send a new one."""
        if self.last is not None and self.last not in self.server.responses:
            self.server.notify("$/cancelRequest", {"id": self.last})
            self.sent[self.last].cancelled = True
        self.last = self.server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": col},
            "context": {"triggerKind": 2}})
        self.sent[self.last] = Sent(time.monotonic())

    def sample_rss(self) -> None:
        now = time.monotonic()
        if now >= self.next_rss:
            self.rss.append((now, self.server.rss_mb()))
            self.next_rss = now + RSS_SAMPLE_S


def wait_until(soak: Soak, t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        soak.sample_rss()
        time.sleep(min(left, 0.05))


def retype_line(soak: Soak, line: int, deadline: float) -> None:
    text = soak.lines[line]
    body = text.rstrip("\r\n")
    indent = len(body) - len(body.lstrip())
    soak.change(line, indent, len(body), "")
    col = indent
    for ch in body[indent:]:
        if time.monotonic() >= deadline:
            soak.change(line, col, col, body[col:])  # restore the line before stopping
            return
        t_key = time.monotonic()
        soak.change(line, col, col, ch)
        col += 1
        soak.ask(URI, line, col)
        wait_until(soak, t_key + KEY_INTERVAL_S)


def side_file(soak: Soak, rng: random.Random) -> None:
    """Open another real module, ask once at a random line end, close it."""
    import json as module_a
    import statistics as module_b

    module = rng.choice([module_a, module_b])
    text = inspect.getsource(module)
    lines = text.splitlines()
    line = rng.randrange(len(lines))
    uri = f"file:///soak/{module.__name__}_copy.py"
    soak.server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}})
    soak.ask(uri, line, len(lines[line]))
    wait_until(soak, time.monotonic() + PAUSE_AFTER_LINE_S)
    soak.server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def final_check(server: RawServer) -> str:
    uri = "file:///soak/check.py"
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "def add(a, b):\n    return "}})
    msg_id = server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 11},
        "context": {"triggerKind": 1}})
    answer = server.wait([msg_id], DRAIN_TIMEOUT_S)[msg_id]
    items = (answer.get("result") or {}).get("items") or []
    return "".join(i["insertText"] for i in items)


def _num(x: float, digits: int = 3) -> float | None:
    """JSON has no NaN: an empty bucket's percentile is null."""
    return None if x != x else round(x, digits)


def ghost_latency(soak: Soak) -> dict[Any, float]:
    """Per request (= keystroke): seconds until an answer to it or to a later request arrived,
    i.e. until the editor had a suggestion (or a definite "none") for what was typed by then."""
    out: dict[Any, float] = {}
    best = float("inf")
    for i, sent in sorted(soak.sent.items(), key=lambda kv: kv[1].t, reverse=True):
        answer = soak.server.responses.get(i, [None])[0]
        if answer is not None and "result" in answer:
            best = min(best, soak.server.answered_at[i])
        if best < float("inf"):
            out[i] = best - sent.t
    return out


def summarize(soak: Soak, t0: float, bucket_s: float, rss_start: float, rss_peak: float,
              rss_end: float, check: str, alive: bool) -> dict[str, Any]:
    responses = soak.server.responses
    ghost = ghost_latency(soak)
    buckets: list[dict[str, Any]] = []
    n_buckets = max(1, int((max((s.t for s in soak.sent.values()), default=t0) - t0) // bucket_s)
                    + 1)
    for b in range(n_buckets):
        lo, hi = t0 + b * bucket_s, t0 + (b + 1) * bucket_s
        ids = [i for i, s in soak.sent.items() if lo <= s.t < hi]
        lat, cancelled, errors = [], 0, 0
        for i in ids:
            answer = responses.get(i, [None])[0]
            if answer is None:
                continue
            code = (answer.get("error") or {}).get("code")
            if code is not None and code != CANCELLED:
                errors += 1
            elif soak.sent[i].cancelled or code == CANCELLED:
                cancelled += 1  # superseded by the next keystroke (answered or not in time)
            else:
                lat.append(soak.server.answered_at[i] - soak.sent[i].t)
        rss = [mb for t, mb in soak.rss if lo <= t < hi]
        keys = [ghost[i] for i in ids if i in ghost]
        buckets.append({
            "bucket": b, "start_min": round(b * bucket_s / 60, 2), "requests": len(ids),
            "answered": len(lat), "cancelled": cancelled, "errors": errors,
            "p50_s": _num(percentile(keys, 0.5)), "p95_s": _num(percentile(keys, 0.95)),
            "answered_p50_s": _num(percentile(lat, 0.5)),
            "answered_p95_s": _num(percentile(lat, 0.95)),
            "rss_mean_mb": round(statistics.fmean(rss)) if rss else None,
            "rss_max_mb": round(max(rss)) if rss else None,
        })
    first, last = buckets[0], buckets[-1]
    unanswered = [i for i in soak.sent if i not in responses]
    errors = sum(b["errors"] for b in buckets)
    return {
        "minutes": round((time.monotonic() - t0) / 60, 2), "requests": len(soak.sent),
        "answered": sum(b["answered"] for b in buckets),
        "cancelled": sum(b["cancelled"] for b in buckets), "errors": errors,
        "unanswered": len(unanswered), "answered_twice": sum(1 for v in responses.values()
                                                             if len(v) > 1),
        "server_alive": alive, "p95_drift_s": _drift(first, last, "p95_s"),
        "p50_drift_s": _drift(first, last, "p50_s"),
        "answered_p95_drift_s": _drift(first, last, "answered_p95_s"),
        "rss_start_mb": round(rss_start), "rss_peak_mb": round(rss_peak),
        "rss_end_mb": round(rss_end), "rss_drift_mb": round(rss_end - rss_start),
        "final_check": check, "final_check_ok": "a + b" in check or "a+b" in check,
        "buckets": buckets,
    }


def _drift(first: dict[str, Any], last: dict[str, Any], key: str) -> float | None:
    a, b = first[key], last[key]
    return None if a is None or b is None else round(b - a, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    name, _ = resolve_model(args.model)
    stamp = timestamp()
    log = RESULTS_DIR / f"soak-{stamp}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lsp_server", "serve", "--model", name]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    server = RawServer(command=cmd, log_path=log)
    rng = random.Random(args.seed)
    text, _ = source_text()
    lines = text.splitlines(keepends=True)
    code_lines = [i for i, ln in enumerate(lines)
                  if ln.strip() and not ln.strip().startswith(("#", '"', "'")) and len(ln) < 100]
    try:
        server.initialize({})
        server.wait_status("ready", timeout=600)
        soak = Soak(server, lines)
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": text}})
        rss_start = server.rss_mb()
        t0 = time.monotonic()
        deadline = t0 + args.minutes * 60
        done = 0
        while time.monotonic() < deadline:
            line = rng.choice(code_lines)
            retype_line(soak, line, deadline)
            done += 1
            wait_until(soak, min(deadline, time.monotonic() + PAUSE_AFTER_LINE_S))
            if time.monotonic() >= deadline:
                break
            if rng.random() < 0.2:  # a new line, typed and removed again
                end = len(soak.lines[line].rstrip("\r\n"))
                soak.change(line, end, end, "\n")
                soak.lines[line:line + 1] = soak.lines[line].split("\n", 1)
                soak.lines[line] += "\n"
                soak.ask(URI, line + 1, 0)
                wait_until(soak, time.monotonic() + KEY_INTERVAL_S)
                soak.version += 1
                server.notify("textDocument/didChange", {
                    "textDocument": {"uri": URI, "version": soak.version},
                    "contentChanges": [{"range": {"start": {"line": line, "character": end},
                                                  "end": {"line": line + 1, "character": 0}},
                                        "text": ""}]})
                soak.lines[line:line + 2] = [soak.lines[line][:-1] + soak.lines[line + 1]]
            if done % SIDE_FILE_EVERY_LINES == 0:
                side_file(soak, rng)
            print(f"{(time.monotonic() - t0) / 60:5.1f} min: {len(soak.sent)} requests, "
                  f"RSS {server.rss_mb():.0f} MB", flush=True)
        drain = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < drain and any(i not in server.responses for i in soak.sent):
            time.sleep(0.2)
        check = final_check(server)
        rss_end, rss_peak = server.rss_mb(), server.peak_rss_mb()
        assert "".join(soak.lines) == text, "the replay's copy of the document drifted"
        return {"stamp": stamp, "model": name, "log": str(log),
                **summarize(soak, t0, args.bucket_minutes * 60, rss_start, rss_peak, rss_end,
                            check, server.alive())}
    finally:
        server.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--bucket-minutes", type=float, default=5.0)
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=0, help="0: the server's default")
    p.add_argument("--seed", type=int, default=1)
    result = run(p.parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "buckets"}, indent=2))
    print(f"{'bucket':>6} {'start':>6} {'reqs':>5} {'ans':>5} {'canc':>5} {'err':>4} "
          f"{'p50 s':>6} {'p95 s':>6} {'RSS MB':>7}")
    for b in result["buckets"]:
        print(f"{b['bucket']:>6} {b['start_min']:>6} {b['requests']:>5} {b['answered']:>5} "
              f"{b['cancelled']:>5} {b['errors']:>4} {b['p50_s']:>6} {b['p95_s']:>6} "
              f"{b['rss_mean_mb'] or '':>7}")
    print(f"results: {write_results('soak', result['stamp'], result)}")


if __name__ == "__main__":
    main()
