"""HumanEval-infilling pass@1 through the real server, beside two raw llama.cpp baselines.

Server: the file is prefix + suffix (the hole empty), the cursor at the end of the prefix; the
inline item is applied with its range exactly as an editor would, then the task's tests run.
Raw (a): the model's reference PSM prompt decoded greedily until end-of-text and inserted as is —
what a naive client gets. Oracle (b): the same text cut to the hole's true line count — a length
no server knows, so the ceiling good post-processing can approach. Same process, never concurrent.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, resolve_model, timestamp, write_results
from lsp_server.driver.editor import apply_inline, item_text, position_at
from lsp_server.driver.session import start_server

DATA_DIR = Path("/work/shared/data/human-eval-infilling")
SPLIT_FILES = {
    "single": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi": "HumanEval-MultiLineInfilling.jsonl.gz",
}
# The reference harness allows a few seconds per task; an infinite loop must not stall the run.
TEST_TIMEOUT_S = 10.0
# Raw decode cap: holes are at most a function body; longer output is the model running on.
RAW_MAX_TOKENS = 256
RAW_N_CTX = 4096


@dataclass
class Task:
    split: str
    task_id: str
    prompt: str  # the prefix
    suffix: str
    canonical_solution: str
    test: str
    entry_point: str


@dataclass
class Row:
    split: str
    task_id: str
    hole_lines: int  # lines of the canonical middle
    server_text: str = ""
    server_s: float = 0.0
    server_pass: bool = False
    server_glued: bool = False  # the item ended mid-line and merged into the next line's text
    raw_text: str = ""
    raw_s: float = 0.0
    raw_pass: bool = False
    oracle_text: str = ""
    oracle_pass: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def load_tasks(split: str, limit: int | None, seed: int, data_dir: Path) -> list[Task]:
    """All tasks of a split, or a seeded random sample of `limit` in file order."""
    with gzip.open(data_dir / SPLIT_FILES[split], "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if limit and limit < len(rows):
        picked = sorted(random.Random(seed).sample(range(len(rows)), limit))
        rows = [rows[i] for i in picked]
    return [Task(split, r["task_id"], r["prompt"], r["suffix"], r["canonical_solution"],
                 r["test"], r["entry_point"]) for r in rows]


def cut_like(text: str, reference: str) -> str:
    """`text` cut to as many lines as `reference` (the oracle length), its line ending included."""
    n = reference.count("\n")
    pieces = text.split("\n")
    if not reference.endswith("\n"):
        return "\n".join(pieces[: n + 1])
    return "\n".join(pieces[:n]) + "\n" if len(pieces) > n else text


def run_tests(task: Task, program: str, timeout: float = TEST_TIMEOUT_S) -> tuple[bool, str]:
    """Run the filled program with the task's tests, isolated, in a temp dir; (passed, error)."""
    source = f"{program}\n\n{task.test}\n\ncheck({task.entry_point})\n"
    with tempfile.TemporaryDirectory(prefix="he-infill-") as tmp:
        path = Path(tmp) / "candidate.py"
        path.write_text(source, encoding="utf-8")
        try:
            proc = subprocess.run([sys.executable, "-I", str(path)], cwd=tmp, timeout=timeout,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False, "timeout"
    if proc.returncode == 0:
        return True, ""
    lines = proc.stderr.strip().splitlines()
    return False, lines[-1] if lines else f"exit {proc.returncode}"


async def server_pass(tasks: list[Task], rows: list[Row], model: str, root: Path,
                      log_path: Path) -> None:
    """One server session: open each file with the hole empty, ask at the hole, close it.

    Every task reuses one path: the server keeps recently closed buffers as cross-file context,
    and other holes of the same problem would hand it the answer.
    """
    path = root / "solution.py"
    async with start_server(model, root=root, log_path=log_path, args=["-v"]) as server:
        await server.wait_ready()
        for i, (task, row) in enumerate(zip(tasks, rows, strict=True)):
            doc = task.prompt + task.suffix
            path.write_text(doc, encoding="utf-8")
            line, col = position_at(doc, len(task.prompt))
            server.open(path.as_uri(), doc, "python")
            res = await server.inline_whole(path.as_uri(), line, col)
            server.close(path.as_uri())
            row.server_s = res.elapsed_s
            filled = doc if res.item is None else apply_inline(doc, line, col, res.item)
            row.server_text = item_text(res.item) if res.item is not None else ""
            rest_of_line = task.suffix.split("\n", 1)[0]
            row.server_glued = (bool(row.server_text) and not row.server_text.endswith("\n")
                                and bool(rest_of_line.strip()))
            row.server_pass, err = run_tests(task, filled)
            if err:
                row.errors["server"] = err
            print(f"  server {i + 1}/{len(tasks)} {task.task_id:28} {res.elapsed_s:5.2f}s "
                  f"{'pass' if row.server_pass else 'FAIL'} {row.server_text[:60]!r}",
                  file=sys.stderr)


def raw_pass(tasks: list[Task], rows: list[Row], model_path: Path, model: str,
             threads: int) -> None:
    """Baselines (a) and (b): the reference PSM prompt through llama.cpp, no post-processing."""
    from lsp_server.engine.generate import generate
    from lsp_server.engine.model import LoadOptions, load_model
    from lsp_server.models.catalog import load_catalog

    spec = load_catalog().resolve(model)
    loaded = load_model(model_path, spec.family,
                        LoadOptions(n_ctx=RAW_N_CTX, n_threads=threads), spec.name)
    fim = loaded.fim
    try:
        for i, (task, row) in enumerate(zip(tasks, rows, strict=True)):
            ids = [fim.prefix, *loaded.tokenize(task.prompt), fim.suffix,
                   *loaded.tokenize(task.suffix), fim.middle]
            gen = generate(loaded, ids, max_tokens=RAW_MAX_TOKENS)
            row.raw_text = gen.text
            row.raw_s = (gen.prompt_ms + gen.generate_ms) / 1000
            row.oracle_text = cut_like(gen.text, task.canonical_solution)
            row.raw_pass, err_a = run_tests(task, task.prompt + row.raw_text + task.suffix)
            row.oracle_pass, err_b = run_tests(task, task.prompt + row.oracle_text + task.suffix)
            if err_a:
                row.errors["raw"] = err_a
            if err_b:
                row.errors["oracle"] = err_b
            print(f"  raw {i + 1}/{len(tasks)} {task.task_id:28} {row.raw_s:5.2f}s "
                  f"a={'pass' if row.raw_pass else 'FAIL'} b={'pass' if row.oracle_pass else 'FAIL'}",
                  file=sys.stderr)
    finally:
        loaded.close()


def replay(path: Path, data_dir: Path) -> int:
    """Re-apply today's post-processing to the raw texts stored in an earlier results file.

    No model runs: each stored raw (a) decode goes through `finish` as if the server had generated
    it, then the tests run. An approximation of the server (whose prompt adds healing and whose
    decode stops early), seconds instead of an hour: for iterating on rules, never for the note.
    """
    from lsp_server.postprocess import Situation, finish

    old = json.loads(path.read_text(encoding="utf-8"))
    for split in old["splits"]:
        tasks = {t.task_id: t for t in load_tasks(split, old["limit"], old["seed"], data_dir)}
        stored = [r for r in old["tasks"] if r["split"] == split]
        passed = 0
        for r in stored:
            t = tasks[r["task_id"]]
            text = finish(r["raw_text"], Situation.between(t.prompt, t.suffix))
            ok, _ = run_tests(t, t.prompt + text + t.suffix)
            passed += ok
        n = len(stored)
        print(f"{split:7} {n:4} replayed {100 * passed / n:5.1f}%  (stored: server "
              f"{100 * old['splits'][split]['pass@1']['server']:5.1f}%, oracle "
              f"{100 * old['splits'][split]['pass@1']['oracle']:5.1f}%)")
    return 0


def copy_baselines(path: Path, rows: list[Row]) -> None:
    """Fill (a) and (b) from an earlier results file that ran the same tasks."""
    old = {(r["split"], r["task_id"]): r for r in
           json.loads(path.read_text(encoding="utf-8"))["tasks"]}
    for row in rows:
        prev = old.get((row.split, row.task_id))
        if prev is None:
            raise SystemExit(f"{path} has no {row.task_id}: run it with the same --limit/--seed")
        for name in ("raw_text", "raw_s", "raw_pass", "oracle_text", "oracle_pass"):
            setattr(row, name, prev[name])
        row.errors.update({k: v for k, v in prev["errors"].items() if k != "server"})


def summarize(rows: list[Row]) -> dict[str, Any]:
    n = len(rows)

    def rate(attr: str) -> float:
        return sum(bool(getattr(r, attr)) for r in rows) / n if n else 0.0

    return {
        "n": n,
        "pass@1": {"server": rate("server_pass"), "raw": rate("raw_pass"),
                   "oracle": rate("oracle_pass")},
        "median_latency_s": {
            "server": statistics.median(r.server_s for r in rows) if n else 0.0,
            "raw": statistics.median(r.raw_s for r in rows) if n else 0.0,
        },
        "server_empty": sum(not r.server_text for r in rows),
        "server_glued": sum(r.server_glued for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.humaneval_infill",
                                     description=__doc__)
    parser.add_argument("--split", choices=["single", "multi", "both"], default="both")
    parser.add_argument("--limit", type=int, help="a seeded random sample of N tasks per split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="models.toml name or .gguf path (default: the default model)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--raw-from", type=Path, metavar="RESULTS_JSON",
                        help="take baselines (a) and (b) from an earlier run of the same tasks "
                             "(they are greedy and timing-free) instead of decoding them again")
    parser.add_argument("--skip-server", action="store_true",
                        help="baselines only (e.g. while the machine is busy: the server's "
                             "results depend on its time budget, the baselines do not)")
    parser.add_argument("--raw-threads", type=int, default=os.cpu_count() or 1,
                        help="llama.cpp threads for the baselines (1 on a shared machine: spinning "
                             "threads slow everything down under contention)")
    parser.add_argument("--replay", type=Path, metavar="RESULTS_JSON",
                        help="no model: re-apply the current rules to an earlier run's raw texts")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay, args.data_dir)

    splits = ["single", "multi"] if args.split == "both" else [args.split]
    tasks = [t for s in splits for t in load_tasks(s, args.limit, args.seed, args.data_dir)]
    rows = [Row(t.split, t.task_id, t.canonical_solution.count("\n")) for t in tasks]
    model, model_path = resolve_model(args.model)
    stamp = timestamp()
    print(f"{len(tasks)} tasks ({', '.join(splits)}), model {model}", file=sys.stderr)
    if not args.skip_server:
        with tempfile.TemporaryDirectory(prefix="he-infill-lsp-") as tmp:
            log_path = RESULTS_DIR / f"humaneval-infill-{stamp}.server.log"
            asyncio.run(server_pass(tasks, rows, model, Path(tmp), log_path))
    if args.raw_from:
        copy_baselines(args.raw_from, rows)
    else:
        # After the server exited: one model at a time.
        raw_pass(tasks, rows, model_path, model, args.raw_threads)

    results: dict[str, Any] = {
        "benchmark": "humaneval-infilling", "model": model, "timestamp": stamp,
        "seed": args.seed, "limit": args.limit, "splits": {}, "tasks": [asdict(r) for r in rows],
    }
    print(f"\nHumanEval-infilling pass@1, {model} (greedy)")
    print(f"{'split':7} {'n':>4} {'server':>7} {'raw(a)':>7} {'oracle(b)':>9} "
          f"{'srv p50 s':>9} {'raw p50 s':>9}")
    for split in splits:
        s = summarize([r for r in rows if r.split == split])
        results["splits"][split] = s
        p, lat = s["pass@1"], s["median_latency_s"]
        print(f"{split:7} {s['n']:4} {100 * p['server']:6.1f}% {100 * p['raw']:6.1f}% "
              f"{100 * p['oracle']:8.1f}% {lat['server']:9.2f} {lat['raw']:9.2f}")
    print(f"results: {write_results('humaneval-infill', stamp, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
