"""Recent-edit context benchmark: is an edit made a moment ago in another file picked up?

Each case (benchmarks/recent_edit_cases/*.toml) is a big module (a standard-library file, so that
cross-file snippet ranking has many chunks to choose from) into which the user types a new name
(`edit`, above the line starting with `before`), and a current file whose line at `<CURSOR>` uses
that name. Two conditions, one server per case and condition:

- **saved**: the module is opened with the edit already in it (a file as it was saved: only the
  cross-file snippet ranking can find the new name);
- **edited**: the module is opened without it, then the edit arrives as the user's change
  (`didChange`), and the current file is opened and asked, as a user switching back would.

Scored as `benchmarks.crossfile` scores (the cursor line's rest after accepting the item: exact
match and edit similarity).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
import tempfile
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from benchmarks.common import RESULTS_DIR, language_of, resolve_model, timestamp, write_results
from benchmarks.crossfile import SETTLE_S, Outcome, load_case, score, summarize
from lsp_server.driver.session import start_server

CASES_DIR = Path(__file__).resolve().parent / "recent_edit_cases"
CONDITIONS = ("saved", "edited")


@dataclass(frozen=True)
class EditCase:
    name: str
    module_path: str  # as the workspace has it
    module_text: str  # before the edit
    line: int  # where the edit goes (0-based)
    edit: str


def load_edit_case(path: Path) -> EditCase:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    f = data["module"]
    lines = inspect.getsource(importlib.import_module(f["stdlib"])).splitlines(keepends=True)
    line = next(i for i, ln in enumerate(lines) if ln.startswith(f["before"]))
    return EditCase(path.stem, f["path"], "".join(lines), line, f["edit"].lstrip("\n"))


async def run_case(path: Path, condition: str, model: str, root: Path, log_path: Path,
                   settle_s: float, context_tokens: int | None = None) -> Outcome:
    case, edit = load_case(path), load_edit_case(path)
    base = root / case.name
    lines = edit.module_text.splitlines(keepends=True)
    saved = "".join([*lines[: edit.line], edit.edit, *lines[edit.line :]])
    module = base / edit.module_path
    current = base / case.path
    for p in (module, current):
        p.parent.mkdir(parents=True, exist_ok=True)
    args = ["-v"] + (["--context-tokens", str(context_tokens)] if context_tokens else [])
    async with start_server(model, root=root, log_path=log_path, args=args) as server:
        await server.wait_ready()
        if condition == "saved":
            server.open(module.as_uri(), saved, language_of(edit.module_path))
        else:
            server.open(module.as_uri(), edit.module_text, language_of(edit.module_path))
            at = types.Position(edit.line, 0)
            server.change(module.as_uri(), 2, types.Range(at, at), edit.edit)
        server.open(current.as_uri(), case.text, language_of(case.path))
        res = await server.inline_item(current.as_uri(), case.line, case.col)
        if settle_s > 0:  # the next pause, with the full window warmed
            await asyncio.sleep(settle_s)
            res = await server.inline_item(current.as_uri(), case.line, case.col)
    out = score(case, res.item, res.elapsed_s)
    mark = "ok " if out.exact else "   "
    print(f"  [{condition}] {mark}{case.name:24} {res.elapsed_s:5.2f}s  {out.got!r}",
          file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recent_edits", description=__doc__)
    parser.add_argument("--model", help="models.toml name or .gguf path (default: the default model)")
    parser.add_argument("--settle-s", type=float, default=SETTLE_S,
                        help="idle seconds before the request that is scored (0: the first)")
    parser.add_argument("--context-tokens", type=int, default=None,
                        help="the server's window (default: its own). On a slow CPU a smaller one "
                             "lets the full window, which carries the context, warm within "
                             "--settle-s: the quick window that answers until then has none")
    args = parser.parse_args(argv)
    paths = sorted(CASES_DIR.glob("*.toml"))
    model, model_path = resolve_model(args.model)
    stamp = timestamp()
    print(f"{len(paths)} cases, model {model} ({model_path})", file=sys.stderr)
    results: dict[str, Any] = {"benchmark": "recent_edits", "model": model, "timestamp": stamp,
                               "conditions": {}}
    with tempfile.TemporaryDirectory(prefix="recent-edits-") as tmp:
        for cond in CONDITIONS:
            log_path = RESULTS_DIR / f"recent-edits-{stamp}-{cond}.server.log"
            outs = [asyncio.run(run_case(p, cond, model, Path(tmp) / cond, log_path,
                                         args.settle_s, args.context_tokens)) for p in paths]
            results["conditions"][cond] = {**summarize(outs), "cases": [asdict(o) for o in outs]}
    print(f"\nrecent-edit context, {model}, {len(paths)} cases")
    print(f"{'condition':10} {'EM %':>6} {'ES':>6} {'p50 s':>6}")
    for cond in CONDITIONS:
        s = results["conditions"][cond]
        print(f"{cond:10} {100 * s['exact_match']:6.1f} {s['edit_similarity']:6.3f} "
              f"{s['median_latency_s']:6.2f}")
    print(f"results: {write_results('recent-edits', stamp, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
