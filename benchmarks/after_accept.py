"""After an accept: how long until the next suggestion is on screen, over the real LSP server.

On the typing replay's file (the start of argparse.py, ~8K tokens), at several lines in its middle:
the line is cut at 40 % of its text and the two lines after it are removed (the hole the user is
filling). Then, as a person does in an editor:
1. a suggestion is asked at the cut and shown (it finishes the line);
2. after a short read (READ_S) it is accepted (Tab: the text inserted; the item's `command`, if it
   has one, executed as LSP 3.18 clients do) and the editor asks again at the line's end;
3. after a key's interval (KEY_S) the user presses Enter: a newline and the line's indentation
   (one level more after a `:`); the editor asks at once. Measured: the time until an answer with at
   least one whole non-empty line (a blank answer counts as "never", and is reported);
4. the user accepts that suggestion's first word (accept-word): measured, the time until the
   remainder is answered (the typed-ahead cache, no model); not when the word is all of it.

    python -m benchmarks.after_accept [--model NAME] [--cases 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from lsprotocol import types

from benchmarks.common import RESULTS_DIR, resolve_model, timestamp, write_results
from benchmarks.latency_replay import percentile, source_text
from lsp_server.driver.session import start_server

READ_S = 0.5  # reading the suggestion before Tab
KEY_S = 0.15  # Tab, then Enter: one key's interval (as the replay types)
CUT = 0.4  # the share of the line typed before the first suggestion
WORD = re.compile(r"\s*[\w.]+|\s*\S")  # what VS Code's accept-word takes (a word or one symbol)


@dataclass
class Case:
    line: int
    shown: str = ""
    after_enter_s: float = float("inf")
    after_enter: str = ""
    word: str = ""
    after_word_s: float = float("inf")
    after_word: str = ""
    word_ok: bool = False  # the answer after the word was the suggestion's remainder


def _pos(line: int, col: int) -> types.Position:
    return types.Position(line, col)


def cases(lines: list[str], mid: int, n: int) -> list[int]:
    """`n` lines from the middle on that a person would type and then press Enter after: code
    lines (not comments or decorators) followed by two more code lines of the same block."""
    found: list[int] = []
    i = mid
    while len(found) < n and i + 3 < len(lines):
        text = lines[i].strip()
        nxt = [lines[i + 1].strip(), lines[i + 2].strip()]
        if (len(text) > 12 and not text.startswith(("#", "@", '"', "'")) and all(nxt)
                and not text.endswith(("\\", ",", "(", "["))):
            found.append(i)
            i += 8  # cases apart, so one case's edits do not decide the next one's
        i += 1
    return found


async def run_case(d: Any, uri: str, original: list[str], version: int, line: int) -> tuple[Case, int]:
    case = Case(line)
    text = original[line].rstrip("\n")
    indent = len(text) - len(text.lstrip())
    cut = indent + max(1, int((len(text) - indent) * CUT))
    doc = [*original[:line], text[:cut] + "\n", *original[line + 3:]]
    version += 1
    d.client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [types.TextDocumentContentChangeWholeDocument(text="".join(doc))]))
    items = await d.inline(uri, line, cut, timeout=600)
    shown = str(items[0].insert_text) if items else ""
    case.shown = shown
    await asyncio.sleep(READ_S)
    if not shown or "\n" in shown:
        return case, version  # not the situation measured (nothing, or a block, to accept)
    version += 1
    d.change(uri, version, types.Range(_pos(line, cut), _pos(line, cut)), shown)
    if items[0].command is not None:
        await d.execute(items[0].command)
    end = cut + len(shown)
    again = asyncio.ensure_future(d.inline(uri, line, end, timeout=600))  # the editor re-asks
    await asyncio.sleep(KEY_S)
    new_indent = " " * (indent + (4 if (text[:cut] + shown).rstrip().endswith(":") else 0))
    version += 1
    t0 = time.perf_counter()
    d.change(uri, version, types.Range(_pos(line, end), _pos(line, end)), "\n" + new_indent)
    if not again.done():
        again.cancel()  # the editor cancels the request of the state before Enter
    items = await d.inline(uri, line + 1, len(new_indent), timeout=600)
    case.after_enter_s = time.perf_counter() - t0
    case.after_enter = str(items[0].insert_text) if items else ""
    if not case.after_enter.split("\n")[0].strip():
        case.after_enter_s = float("inf")  # blank: nothing shown
        return case, version
    m = WORD.match(case.after_enter)
    case.word = m.group(0) if m else case.after_enter
    if len(case.word) >= len(case.after_enter.rstrip()):
        return case, version  # one word: accepting it leaves no remainder to measure
    col = len(new_indent)
    version += 1
    t0 = time.perf_counter()
    d.change(uri, version, types.Range(_pos(line + 1, col), _pos(line + 1, col)), case.word)
    items = await d.inline(uri, line + 1, col + len(case.word), timeout=600)
    case.after_word_s = time.perf_counter() - t0
    case.after_word = str(items[0].insert_text) if items else ""
    case.word_ok = case.after_word == case.after_enter[len(case.word):]
    return case, version


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    model, _ = resolve_model(args.model)
    stamp = timestamp()
    text, mid = source_text()
    original = text.splitlines(keepends=True)
    uri = "file:///bench/argparse_copy.py"
    rows: list[Case] = []
    async with start_server(model, log_path=RESULTS_DIR / f"after-accept-{stamp}.log",
                            args=("-v",)) as d:
        await d.wait_ready()
        d.open(uri, text, "python")
        await d.inline(uri, mid, 0, timeout=900)  # the cold prompt, paid once
        version = 1
        for line in cases(original, mid, args.cases):
            case, version = await run_case(d, uri, original, version, line)
            rows.append(case)
            print(f"  line {line + 1}: shown {case.shown[:40]!r}; after Enter "
                  f"{case.after_enter_s:.3f}s {case.after_enter[:40]!r}; after word "
                  f"{case.after_word_s:.3f}s")
            await asyncio.sleep(2.0)  # the user reads on: the idle warm-up runs
        stats = await d.stats()
    measured = [c for c in rows if c.shown and "\n" not in c.shown]
    enter = [c.after_enter_s for c in measured]
    word = [c.after_word_s for c in measured if c.after_word_s != float("inf")]
    summary = {
        "model": model, "cases": len(rows), "measured": len(measured),
        "blank_after_enter": sum(1 for s in enter if s == float("inf")),
        "after_enter_p50_s": round(percentile(enter, 0.5), 3),
        "after_enter_max_s": round(max(enter), 3) if enter else None,
        "within_0.5s": sum(1 for s in enter if s <= 0.5),
        "after_word_p50_s": round(percentile(word, 0.5), 3) if word else None,
        "after_word_max_s": round(max(word), 3) if word else None,
        "after_word_measured": len(word),
        "after_word_remainder_ok": sum(1 for c in measured if c.word_ok),
        "earlyAnswers": stats.get("earlyAnswers"), "joined": stats.get("joined"),
        "carried": stats.get("carried"),
        "typedAheadHits": stats.get("typedAheadHits"),
    }
    print(json.dumps(summary))
    path = write_results("after-accept", stamp, {"summary": summary, "cases": [asdict(c) for c in rows]})
    print(f"results: {path}")
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--cases", type=int, default=12)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
