"""Cross-file completion benchmark: does a name defined in another open file reach the model?

Each case (benchmarks/crossfile_cases/*.toml) is a tiny project: "other" files defining names a
model cannot guess, and a "current" file whose line at `<CURSOR>` needs one of them. The line is
cut at the cursor (the rest of it is the expected completion) and the real server is asked for an
inline completion there, once with the other files open and once without, one server session per
condition. Acceptance: exact match with context is at least twice that without.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from benchmarks.common import RESULTS_DIR, language_of, resolve_model, timestamp, write_results
from lsp_server.driver.editor import apply_inline, item_text
from lsp_server.driver.session import Driver, start_server

CASES_DIR = Path(__file__).resolve().parent / "crossfile_cases"
CURSOR = "<CURSOR>"
CONDITIONS = ("without", "with")
# "first": the request right after opening (the server may answer from a cold, cheaper prompt);
# "settled": the same request after SETTLE_S idle seconds, like an editor's next typing pause.
ATTEMPTS = ("first", "settled")
SETTLE_S = 3.0


@dataclass(frozen=True)
class Case:
    name: str
    language: str
    others: tuple[tuple[str, str], ...]  # (relative path, text)
    path: str
    text: str  # the current file as opened: cursor line cut at the cursor
    line: int
    col: int  # UTF-16 units (what the client sends)
    expected: str  # the rest of the cursor line


def load_case(path: Path) -> Case:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    current = data["current"]
    raw: str = current["text"]
    if raw.count(CURSOR) != 1:
        raise ValueError(f"{path.name}: the current file needs exactly one {CURSOR}")
    before, after = raw.split(CURSOR)
    expected, newline, rest = after.partition("\n")
    head = before[before.rfind("\n") + 1 :]
    return Case(
        name=path.stem,
        language=language_of(current["path"]),
        others=tuple((f["path"], f["text"]) for f in data.get("files", [])),
        path=current["path"],
        text=before + newline + rest,
        line=before.count("\n"),
        col=len(head.encode("utf-16-le")) // 2,
        expected=expected,
    )


def load_cases(limit: int | None = None) -> list[Case]:
    cases = [load_case(p) for p in sorted(CASES_DIR.glob("*.toml"))]
    return cases[:limit] if limit else cases


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein / max length (1.0 for two empty strings)."""
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - levenshtein(a, b) / longest


@dataclass
class Outcome:
    case: str
    language: str
    expected: str
    got: str  # the cursor line after accepting the item, from the cursor on
    suggestion: str  # the item's insert text as sent
    exact: bool
    similarity: float
    latency_s: float


def score(case: Case, item: types.InlineCompletionItem | None, latency: float) -> Outcome:
    """Accept the item as an editor would and compare the cursor line's rest with the expected."""
    text = item_text(item) if item is not None else ""
    new_doc = apply_inline(case.text, case.line, case.col, item) if item is not None else case.text
    line = new_doc.split("\n")[case.line]
    head = case.text.split("\n")[case.line]
    got = line[len(head) :] if line.startswith(head) else line
    want = case.expected if line.startswith(head) else head + case.expected
    return Outcome(
        case=case.name, language=case.language, expected=case.expected, got=got,
        suggestion=text, exact=got.rstrip() == want.rstrip(),
        similarity=edit_similarity(got.rstrip(), want.rstrip()), latency_s=latency,
    )


async def run_condition(cases: list[Case], condition: str, model: str, root: Path,
                        log_path: Path, shared: bool, settle_s: float) -> dict[str, list[Outcome]]:
    """Per case: open (others first when `with`), ask (twice), close everything.

    A fresh server per case by default: the server keeps recently *closed* buffers as context, so
    in one long session earlier cases leak into later ones (even into `without`).
    """
    outcomes: dict[str, list[Outcome]] = {a: [] for a in ATTEMPTS}
    for group in ([cases] if shared else [[c] for c in cases]):
        async with start_server(model, root=root, log_path=log_path, args=["-v"]) as server:
            await server.wait_ready()
            for case in group:
                for attempt, out in (await _run_case(server, case, condition, root,
                                                     settle_s)).items():
                    outcomes[attempt].append(out)
    return outcomes


async def _run_case(server: Driver, case: Case, condition: str, root: Path,
                    settle_s: float) -> dict[str, Outcome]:
    base = root / case.name
    opened: list[str] = []
    docs = [*(case.others if condition == "with" else ()), (case.path, case.text)]
    for rel, text in docs:
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        server.open(path.as_uri(), text, language_of(rel))
        opened.append(path.as_uri())
    outs: dict[str, Outcome] = {}
    for attempt in ATTEMPTS if settle_s > 0 else ATTEMPTS[:1]:
        if outs:
            await asyncio.sleep(settle_s)
        res = await server.inline_item(opened[-1], case.line, case.col)
        out = outs[attempt] = score(case, res.item, res.elapsed_s)
        mark = "ok " if out.exact else "   "
        print(f"  [{condition}/{attempt}] {mark}{case.name:28} {res.elapsed_s:5.2f}s  {out.got!r}",
              file=sys.stderr)
    for uri in opened:
        server.close(uri)
    return outs


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    by_lang: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_lang.setdefault(o.language, []).append(o)
    return {
        "n": n,
        "exact_match": sum(o.exact for o in outcomes) / n if n else 0.0,
        "edit_similarity": statistics.fmean(o.similarity for o in outcomes) if n else 0.0,
        "median_latency_s": statistics.median(o.latency_s for o in outcomes) if n else 0.0,
        "exact_match_by_language": {
            k: sum(o.exact for o in v) / len(v) for k, v in sorted(by_lang.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crossfile", description=__doc__)
    parser.add_argument("--model", help="models.toml name or .gguf path (default: the default model)")
    parser.add_argument("--limit", type=int, help="only the first N cases (by name)")
    parser.add_argument("--settle-s", type=float, default=SETTLE_S,
                        help="idle seconds before the repeated request (0: ask once)")
    parser.add_argument("--shared-session", action="store_true",
                        help="one server per condition instead of one per case (faster; earlier "
                             "cases stay visible as recently closed buffers)")
    args = parser.parse_args(argv)

    cases = load_cases(args.limit)
    model, model_path = resolve_model(args.model)
    stamp = timestamp()
    print(f"{len(cases)} cases, model {model} ({model_path})", file=sys.stderr)
    results: dict[str, Any] = {"benchmark": "crossfile", "model": model, "timestamp": stamp,
                               "session": "shared" if args.shared_session else "per-case",
                               "conditions": {}}
    with tempfile.TemporaryDirectory(prefix="crossfile-") as tmp:
        for cond in CONDITIONS:
            log_path = RESULTS_DIR / f"crossfile-{stamp}-{cond}.server.log"
            outcomes = asyncio.run(run_condition(cases, cond, model, Path(tmp) / cond, log_path,
                                                   args.shared_session, args.settle_s))
            results["conditions"][cond] = {
                attempt: {**summarize(outs), "cases": [asdict(o) for o in outs]}
                for attempt, outs in outcomes.items() if outs}

    conds = results["conditions"]
    print(f"\ncross-file completion, {model}, {len(cases)} cases")
    print(f"{'condition':10} {'request':8} {'EM %':>6} {'ES':>6} {'p50 s':>6}")
    for cond in CONDITIONS:
        for attempt, s in conds[cond].items():
            print(f"{cond:10} {attempt:8} {100 * s['exact_match']:6.1f} "
                  f"{s['edit_similarity']:6.3f} {s['median_latency_s']:6.2f}")
    results["acceptance"] = {"rule": "EM(with) >= 2 * EM(without) and EM(with) > 0"}
    for attempt in conds["with"]:
        em_with, em_without = (conds[c][attempt]["exact_match"] for c in ("with", "without"))
        ok = results["acceptance"][attempt] = em_with > 0 and em_with >= 2 * em_without
        print(f"acceptance ({attempt} request): {'PASS' if ok else 'FAIL'}")
    print(f"results: {write_results('crossfile', stamp, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
