"""Instruction edits ("Fix bugs in NAME.", and a few others) on HumanEval: pass@1 and latency.

Modes (tasks from `benchmarks/edit_tasks.py`; each edited file runs its tests in a sandbox):
- `raw` (baseline): the raw model with its own chat template through llama-cpp-python's
  `create_chat_completion`, the user turn being the instruction and the function in a fence, as a
  naive client would send it; the reply's first fenced block (else the whole reply) replaces the
  function as is.
- `prompt`: this project's pure half in-process — `context.selection` picks the range,
  `prompt.edit` builds the prompt (same llama-cpp-python model, greedy), `postprocess.edit` turns
  the reply into the new text or refuses. What the server will do, minus the server.
- `server`: through the real server (`workspace/executeCommand starcoder.edit`), the edit it
  applies with `workspace/applyEdit` applied to the text as an editor does (`server_pass`).

Latency is the time from the request to the reply (prompt evaluation + decoding). One model at a
time, greedy, never two modes at once (2 cores are shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.edit_tasks import DATA_DIR, EditTask, build_tasks, check_document, replace_lines
from lsp_server.context.selection import EditRange, Refusal, edit_range
from lsp_server.postprocess.edit import fenced_blocks, finish
from lsp_server.prompt.edit import (
    EditPrompt,
    EditRequest,
    edit_prompt,
    max_new_tokens,
    too_many_tokens,
)

N_CTX = 4096
LANGUAGE, PATH = "python", "solution.py"


@dataclass
class Row:
    task_id: str
    kind: str
    note: str
    mode: str
    passed: bool = False
    seconds: float = 0.0
    refused: str = ""  # a Refusal's kind (prompt mode)
    error: str = ""
    reply: str = ""


class Model:
    """One GGUF in llama-cpp-python, with what the prompts need from it."""

    def __init__(self, path: Path, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads, verbose=False)
        meta = self.llm.metadata
        self.chat_template: str | None = meta.get("tokenizer.chat_template")
        self.bos_text = self._token_text(self.llm.token_bos())
        self.eos_text = self._token_text(self.llm.token_eos())

    def _token_text(self, tid: int) -> str:
        if tid < 0:
            return ""
        return self.llm.detokenize([tid], special=True).decode("utf-8", "replace")

    def special(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def plain(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def is_single_token(self, text: str) -> bool:
        return len(self.special(text)) == 1

    def complete(self, prompt: EditPrompt, max_tokens: int) -> tuple[str, float]:
        """Greedy decode of our prompt, stopped by its stop strings; (reply, seconds)."""
        ids = prompt.tokenize(self.special, self.plain)
        t0 = time.perf_counter()
        out: Any = self.llm.create_completion(prompt=ids, max_tokens=max_tokens, temperature=0.0,
                                              stop=list(prompt.stops))
        return out["choices"][0]["text"], time.perf_counter() - t0

    def chat(self, user: str, max_tokens: int) -> tuple[str, float]:
        """The model's own chat template (llama-cpp-python renders it), greedy."""
        t0 = time.perf_counter()
        out: Any = self.llm.create_chat_completion(
            messages=[{"role": "user", "content": user}], max_tokens=max_tokens, temperature=0.0)
        return out["choices"][0]["message"]["content"] or "", time.perf_counter() - t0

    def close(self) -> None:
        self.llm.close()


def apply_range(document: str, rng: EditRange, text: str) -> str:
    """The document with the range replaced (columns are code points, as in `EditRange`)."""
    lines = document.splitlines(True)

    def offset(pos: tuple[int, int]) -> int:
        return sum(len(line) for line in lines[: pos[0]]) + pos[1]

    return document[: offset(rng.start)] + text + document[offset(rng.end):]


def raw_edit(model: Model, task: EditTask) -> Row:
    """The baseline: chat template, instruction + fenced function, first fenced block back."""
    row = Row(task.task_id, task.kind, task.note, "raw")
    code = task.selection
    user = f"{task.instruction}\n\n```{LANGUAGE}\n{code.rstrip()}\n```"
    reply, row.seconds = model.chat(user, max_new_tokens(len(model.plain(code))))
    row.reply = reply
    blocks = fenced_blocks(reply)
    new = blocks[0] if blocks else reply
    row.passed, row.error = check_document(
        task, replace_lines(task.document, task.start_line, task.end_line, new))
    return row


def prompt_edit(model: Model, task: EditTask) -> Row:
    """This project's selection, prompt and post-processing around the same model."""
    row = Row(task.task_id, task.kind, task.note, "prompt")
    lines = task.document.splitlines(True)
    rng = edit_range(lines, (task.start_line, 0), (task.end_line, 0))
    if isinstance(rng, Refusal):
        row.refused, row.error = rng.kind, rng.message
        return row
    code_tokens = len(model.plain(rng.code))
    too_big = too_many_tokens(code_tokens)
    if too_big is not None:
        row.refused, row.error = too_big.kind, too_big.message
        return row
    prompt = edit_prompt(EditRequest.of(rng, task.instruction, LANGUAGE, PATH),
                         chat_template=model.chat_template, bos=model.bos_text,
                         eos=model.eos_text, is_single_token=model.is_single_token)
    reply, row.seconds = model.complete(prompt, max_new_tokens(code_tokens))
    row.reply = reply
    new = finish(reply, rng, prompt)
    if isinstance(new, Refusal):
        row.refused, row.error = new.kind, new.message
        return row
    row.passed, row.error = check_document(task, apply_range(task.document, rng, new))
    return row


async def server_pass(tasks: list[EditTask], model: str, root: Path, log_path: Path) -> list[Row]:
    """Through the real server: each task's file opened, `starcoder.edit` run on its function's
    lines, the server's `workspace/applyEdit` applied to the text as an editor does, the result
    tested. Latency: the command sent -> the edit applied."""
    from lsprotocol import types

    from lsp_server.driver.session import SETTLED, start_server

    rows: list[Row] = []
    edits: list[types.ApplyWorkspaceEditParams] = []
    async with start_server(model, root=root, log_path=log_path) as driver:

        @driver.client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            edits.append(params)
            return types.ApplyWorkspaceEditResult(applied=True)

        st = await driver.wait_status(*SETTLED, timeout=600)
        if st["state"] != "ready":
            raise SystemExit(f"the server did not load {model}: {st['message']}")
        for i, task in enumerate(tasks):
            row = Row(task.task_id, task.kind, task.note, "server")
            path = root / f"task{i}" / PATH
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(task.document)
            uri = path.as_uri()
            driver.open(uri, task.document, LANGUAGE)
            edits.clear()
            rng = {"start": {"line": task.start_line, "character": 0},
                   "end": {"line": task.end_line, "character": 0}}
            t0 = time.perf_counter()
            try:
                answer = await driver.execute(types.Command(
                    title="edit", command="starcoder.edit",
                    arguments=[uri, rng, task.instruction]))
            except Exception as exc:
                answer = {"applied": False, "reason": f"error: {exc}"}
            row.seconds = time.perf_counter() - t0
            if isinstance(answer, dict) and answer.get("applied") and edits:
                change = edits[0].edit.document_changes[0]  # type: ignore[index]
                edit = change.edits[0]  # type: ignore[union-attr]
                assert isinstance(edit, types.TextEdit), edit  # our server sends plain edits
                span = EditRange((edit.range.start.line, edit.range.start.character),
                                 (edit.range.end.line, edit.range.end.character), "", True,
                                 "", "\n")
                edited = apply_range(task.document, span, edit.new_text)
                row.reply = edit.new_text
                row.passed, row.error = check_document(task, edited)
            else:
                row.refused = str(answer.get("reason", "") if isinstance(answer, dict) else answer)
            driver.client.text_document_did_close(types.DidCloseTextDocumentParams(
                types.TextDocumentIdentifier(uri)))
            print(f"  server {i + 1}/{len(tasks)} {task.task_id} {row.seconds:5.1f}s "
                  f"{'pass' if row.passed else 'FAIL'} {row.refused}", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def summarize(rows: list[Row]) -> dict[str, Any]:
    def rate(rs: list[Row]) -> float:
        return sum(r.passed for r in rs) / len(rs) if rs else 0.0

    fixes = [r for r in rows if r.kind == "fix"]
    others = [r for r in rows if r.kind != "fix"]
    return {"n": len(rows), "n_fix": len(fixes), "n_other": len(others),
            "pass@1": rate(rows), "pass@1_fix": rate(fixes), "pass@1_other": rate(others),
            "median_s": statistics.median(r.seconds for r in rows) if rows else 0.0,
            "p90_s": (statistics.quantiles([r.seconds for r in rows], n=10)[-1]
                      if len(rows) >= 2 else 0.0),
            "refused": sum(bool(r.refused) for r in rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.edit_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["raw", "prompt", "server"], action="append",
                        help="repeatable; default: server")
    parser.add_argument("--raw", action="append_const", dest="mode", const="raw",
                        help="the baseline (same as --mode raw)")
    parser.add_argument("--model", help="models.toml name or .gguf path (default: the default)")
    parser.add_argument("--limit", type=int, help="this many fix tasks (default: every problem)")
    parser.add_argument("--no-other", action="store_true", help="only the fix tasks")
    parser.add_argument("--seed", type=int, default=0, help="which mutation each problem gets")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    modes: list[str] = args.mode or ["server"]

    from benchmarks.common import resolve_model, timestamp, write_results

    tasks = build_tasks(args.limit, args.seed, others=not args.no_other, data_dir=args.data_dir)
    name, path = resolve_model(args.model)
    stamp = timestamp()
    print(f"{len(tasks)} tasks, model {name}, modes {', '.join(modes)}", file=sys.stderr)
    rows: list[Row] = []
    for mode in modes:
        if mode == "server":
            import asyncio
            import tempfile

            from benchmarks.common import RESULTS_DIR

            with tempfile.TemporaryDirectory(prefix="edit-bench-") as tmp:
                rows += asyncio.run(server_pass(tasks, name, Path(tmp),
                                                RESULTS_DIR / f"edit-{stamp}.server.log"))
            continue
        model = Model(path, args.threads)
        try:
            for i, task in enumerate(tasks):
                row = (raw_edit if mode == "raw" else prompt_edit)(model, task)
                rows.append(row)
                print(f"  {mode} {i + 1}/{len(tasks)} {task.task_id:26} {row.seconds:5.1f}s "
                      f"{'pass' if row.passed else 'FAIL'} {row.refused or row.error[:60]}",
                      file=sys.stderr)
        finally:
            model.close()
    results: dict[str, Any] = {"benchmark": "edit", "model": name, "timestamp": stamp,
                               "limit": args.limit, "seed": args.seed, "modes": {},
                               "tasks": [asdict(r) for r in rows]}
    print(f"\nInstruction edits, {name} (greedy)")
    print(f"{'mode':7} {'n':>3} {'pass@1':>7} {'fix':>6} {'other':>6} {'p50 s':>6} {'p90 s':>6} "
          f"{'refused':>7}")
    for mode in modes:
        s = summarize([r for r in rows if r.mode == mode])
        results["modes"][mode] = s
        print(f"{mode:7} {s['n']:3} {100 * s['pass@1']:6.1f}% {100 * s['pass@1_fix']:5.1f}% "
              f"{100 * s['pass@1_other']:5.1f}% {s['median_s']:6.1f} {s['p90_s']:6.1f} "
              f"{s['refused']:7}")
    print(f"results: {write_results('edit', stamp, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
