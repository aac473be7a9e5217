"""`starcoder-lsp demo`: the whole product once (completion, edit, explanation), as an editor
would use it.

Pulls the demo model on first run (explicit, with a progress bar), starts the real server as a
subprocess over stdio, opens a sample file, waits for `starcoder/status` ready, asks for an inline
completion at a typing pause and prints it with timings, then runs the "Explain" code action on a
function and prints the explanation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types

from lsp_server import defaults
from lsp_server.driver.session import SETTLED, Driver, start_server

SAMPLE = '''\
import math


def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    for k in range(2, int(math.sqrt(n)) + 1):
        if n % k == 0:
            return False
    return True


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number, recursively."""
    if n < 2:
        return n
    {CURSOR}


def average(values: list[float]) -> float:
    """Return the arithmetic mean of values."""
    return sum(values) / (len(values) - 1)


if __name__ == "__main__":
    print([fibonacci(i) for i in range(10) if is_prime(i)])
'''


def _cursor(text: str) -> tuple[str, int, int]:
    before, after = text.split("{CURSOR}")
    line = before.count("\n")
    col = len(before) - (before.rfind("\n") + 1)
    return before + after, line, col


async def _drive(model: str, workdir: Path, extra: list[str]) -> int:
    source, line, col = _cursor(SAMPLE)
    path = workdir / "sample.py"
    path.write_text(source, encoding="utf-8")
    uri = path.as_uri()

    def status(st: dict[str, Any]) -> None:
        print(f"  status: {st['state']} {st['message'] or ''}", file=sys.stderr)

    t0 = time.perf_counter()
    async with start_server(model, args=extra, root=workdir, on_status=status) as driver:
        driver.open(uri, source)
        st = await driver.wait_status(*SETTLED, timeout=defaults.DRIVER_READY_TIMEOUT_S)
        t_ready = time.perf_counter()
        if st["state"] != "ready":
            print(f"starcoder-lsp: the server could not load the model: {st['message']}",
                  file=sys.stderr)
            return 1
        res = await driver.inline_whole(uri, line, col)
        text = res.text
        lines = source.splitlines()
        print(f"\n--- {path.name}, line {line + 1}, col {col + 1} (inline completion) ---")
        for ln in lines[max(0, line - 4):line]:
            print(f"  {ln}")
        print(f"  {lines[line][:col]}\033[2m{text}\033[0m" if sys.stdout.isatty()
              else f"  {lines[line][:col]}{text}")
        print("---")
        print(f"server start + model load: {t_ready - t0:.2f} s; "
              f"completion: {res.elapsed_s * 1000:.0f} ms")
        code = 0
        if not text:
            print("starcoder-lsp: the model returned no suggestion", file=sys.stderr)
            code = 1
        code = max(code, await _edit(driver, uri, source))
        return max(code, await _explain(driver, uri, source))


async def _edit(driver: Driver, uri: str, source: str) -> int:
    """Ask for the code actions inside average, run "…: Fix bugs", print the applied edit."""
    line = source.splitlines().index("    return sum(values) / (len(values) - 1)")
    here = types.Range(types.Position(line, 4), types.Position(line, 4))
    applied: list[types.ApplyWorkspaceEditParams] = []

    @driver.client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)  # an editor would change the buffer here (one undo step)
        return types.ApplyWorkspaceEditResult(applied=True)

    ran = await _run_action(driver, uri, here, lambda t: t.startswith("Edit")
                            and t.endswith("Fix bugs"))
    if ran is None:
        return 1
    fix, answer, dt = ran
    text = answer.get("text", "") if isinstance(answer, dict) else ""
    print(f"\n--- {fix.title} (code action -> starcoder.edit) ---\n{text}\n---")
    if not (isinstance(answer, dict) and answer.get("applied") and applied):
        reason = answer.get("reason") if isinstance(answer, dict) else answer
        print(f"starcoder-lsp: the edit was not applied: {reason}", file=sys.stderr)
        return 1
    print(f"edit (applied with workspace/applyEdit): {dt:.1f} s")
    return 0


async def _run_action(driver: Driver, uri: str, here: types.Range, wanted: Callable[[str], bool]
                      ) -> tuple[types.CodeAction, Any, float] | None:
    """The first code action at `here` whose title is `wanted`, run: (action, answer, seconds)."""
    actions = await driver.code_actions(uri, here)
    action = next((a for a in actions if isinstance(a, types.CodeAction) and wanted(a.title)
                   and a.command is not None), None)
    if action is None or action.command is None:
        print("starcoder-lsp: the code action was not offered", file=sys.stderr)
        return None
    t0 = time.perf_counter()
    answer = await driver.execute(action.command)
    return action, answer, time.perf_counter() - t0


async def _explain(driver: Driver, uri: str, source: str) -> int:
    """Ask for the code actions inside is_prime, run "Explain…", print the markdown."""
    line = source.splitlines().index("    for k in range(2, int(math.sqrt(n)) + 1):")
    here = types.Range(types.Position(line, 4), types.Position(line, 4))
    ran = await _run_action(driver, uri, here, lambda t: t.startswith("Explain"))
    if ran is None:
        return 1
    explain, markdown, dt = ran
    print(f"\n--- {explain.title} (code action -> starcoder.explain) ---\n{markdown}\n---")
    print(f"explanation: {dt:.1f} s")
    return 0 if isinstance(markdown, str) and markdown.strip() else 1


def run(args: argparse.Namespace) -> int:
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog
    from lsp_server.models.commands import pull_with_progress
    from lsp_server.models.spec import CatalogError

    model = args.model or defaults.DEFAULT_MODEL
    try:
        spec = load_catalog(models_file=args.models_file).resolve(model)
    except CatalogError as exc:
        print(f"starcoder-lsp: {exc}", file=sys.stderr)
        return 1
    print(f"model: {spec.name} ({spec.source.describe()})", file=sys.stderr)
    try:
        pull_with_progress(spec)
    except store.PullError as exc:
        print(f"starcoder-lsp: {exc}", file=sys.stderr)
        return 1
    extra: list[str] = []
    if args.models_file:
        extra += ["--models-file", str(args.models_file)]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    with tempfile.TemporaryDirectory(prefix="starcoder-demo-") as tmp:
        return asyncio.run(_drive(spec.name, Path(tmp), extra))
