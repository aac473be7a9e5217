"""The long hostile-input run: ≥ 10,000 messages against one server, with figures.

Rounds of hypothesis batches (testkit/hostile.py: hostile requests, notifications and broken
framing), each followed by an edit storm (1,000 didChange/s with superseded inline requests) and a
cancel storm (testkit/storms.py), all against the same server process and the tiny StarCoder GGUF
(threads=1), until `--messages` have been written. At the end a normal completion must answer what
an untouched server answers. Printed and written to benchmarks/results/fuzz-STAMP.json: messages
and bytes sent, requests, unanswered requests, crashes, protocol violations, peak and final RSS.

    python -m benchmarks.fuzz_long --messages 10000 [--seed 1] [--examples-per-round 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, timestamp, write_results
from testkit.hostile import FuzzStats, run_fuzz
from testkit.rawrpc import RawServer
from testkit.storms import INIT, cancel_storm, check_answer, edit_storm
from testkit.tiny_models import write_tiny_starcoder


def start(model: Path, log: Path) -> RawServer:
    srv = RawServer(model, log_path=log)
    srv.initialize(INIT)
    srv.wait_status("ready")
    return srv


def reference(model: Path, log: Path) -> list[str]:
    srv = start(model, log)
    try:
        return [i["insertText"] for i in check_answer(srv)]
    finally:
        srv.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    stamp = timestamp()
    log = RESULTS_DIR / f"fuzz-{stamp}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    model = write_tiny_starcoder(Path(tempfile.mkdtemp(prefix="fuzz-long-")) / "tiny.gguf")
    want = reference(model, log)
    stats = FuzzStats()
    failures: list[str] = []
    crashes, sent, sent_bytes, violations, rounds, unanswered, duplicates = 0, 0, 0, 0, 0, 0, 0
    peak, rss_end, got = 0.0, float("nan"), None
    t0 = time.monotonic()
    srv = start(model, log)
    rss_start = srv.rss_mb()
    try:
        while sent + srv.messages_sent < args.messages:
            rounds += 1
            try:
                run_fuzz(srv, examples=args.examples_per_round, seed_value=args.seed + rounds,
                         stats=stats)
                edit_storm(srv)
                cancel_storm(srv)
            except Exception as exc:  # record and go on: the figures say what failed
                failures.append(f"round {rounds}: {type(exc).__name__}: {str(exc)[:500]}")
            peak = max(peak, srv.peak_rss_mb())
            print(f"round {rounds}: {sent + srv.messages_sent} messages, {stats.requests} fuzz "
                  f"requests, RSS {srv.rss_mb():.0f} MB (peak {peak:.0f})", flush=True)
            if not srv.alive():
                crashes += 1
                sent, sent_bytes = sent + srv.messages_sent, sent_bytes + srv.bytes_sent
                violations += len(srv.violations)
                srv.close()
                srv = start(model, log)
        got = [i["insertText"] for i in check_answer(srv)]
        pending = [i for i in stats.expected if i not in srv.responses]
        if pending:
            time.sleep(10)
        unanswered = sum(1 for i in stats.expected if i not in srv.responses)
        duplicates = sum(1 for v in srv.responses.values() if len(v) > 1)
        rss_end = srv.rss_mb()
        peak = max(peak, srv.peak_rss_mb())
    finally:
        sent, sent_bytes = sent + srv.messages_sent, sent_bytes + srv.bytes_sent
        violations += len(srv.violations)
        alive = srv.alive()
        exit_code = srv.close()
    return {
        "messages_sent": sent, "bytes_sent": sent_bytes, "rounds": rounds,
        "fuzz_batches": stats.batches, "fuzz_requests": len(stats.expected),
        "unanswered": unanswered, "answered_twice": duplicates, "crashes": crashes,
        "protocol_violations": violations, "alive_at_end": alive, "exit_code": exit_code,
        "final_completion_matches_fresh_server": got == want,
        "rss_start_mb": round(rss_start), "rss_end_mb": round(rss_end),
        "peak_rss_mb": round(peak), "duration_s": round(time.monotonic() - t0, 1),
        "failures": failures, "log": str(log), "stamp": stamp,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--examples-per-round", type=int, default=200)
    args = p.parse_args()
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=2))
    for failure in result["failures"]:
        print("FAILURE", failure)
    print(f"results: {write_results('fuzz', result['stamp'], result)}")
    ok = (not result["failures"] and result["crashes"] == 0 and result["unanswered"] == 0
          and result["final_completion_matches_fresh_server"])
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
