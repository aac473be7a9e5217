"""Instruction-edit tasks built from HumanEval, and a safe way to run a candidate against tests.

Fix tasks (the HumanEvalFix form): each problem's canonical program with exactly one bug injected
by an AST-located mutation of our own (a comparison or arithmetic operator swapped, `and`/`or`
exchanged, a negation dropped, a constant or a range/slice bound off by one, a boolean flipped,
two arguments swapped). Only programs whose original passes its tests and whose mutant fails them
are kept. The instruction is "Fix bugs in NAME." and the selection is the whole function.

Other tasks: a handful of instructions with checks of their own — a parameter with a default
(extra asserts), validation (an expected exception), a docstring or type hints (the function
stripped of them first; the `ast` must show them afterwards), a rename — all with the problem's
tests still passing.

Data: `/work/shared/data/human-eval-infilling/` (MIT): each task's prompt + canonical middle +
suffix is the problem's canonical program.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path("/work/shared/data/human-eval-infilling")
DATA_FILE = "HumanEval-SingleLineInfilling.jsonl.gz"
# HumanEval's harness allows a few seconds per problem; an infinite loop must not stall a run.
TEST_TIMEOUT_S = 10.0
# Address space a candidate may use: generous for the tests, fatal for a runaway allocation.
TEST_MEMORY_BYTES = 2 * 1024**3
# Mutants tried per problem before it is skipped (each costs one test run).
MAX_MUTANT_TRIES = 8


@dataclass(frozen=True)
class Problem:
    task_id: str  # "HumanEval/12"
    entry_point: str
    program: str  # the canonical program: imports, helpers, the entry function
    test: str  # defines check(candidate)


@dataclass(frozen=True)
class EditTask:
    task_id: str  # "fix/HumanEval/12", "docstring/HumanEval/53", ...
    kind: str  # "fix" | "param" | "raise" | "docstring" | "hints" | "rename"
    instruction: str
    document: str  # the file the user edits
    start_line: int  # the selection: whole lines [start_line, end_line), 0-based
    end_line: int
    test: str
    call: str  # the name `check` is called with (a rename changes it)
    extra: str = ""  # more asserts run after check(...)
    ast_check: str = ""  # "docstring" | "hints": what the new function must have
    note: str = ""  # the mutation, for the report

    @property
    def selection(self) -> str:
        return "".join(self.document.splitlines(True)[self.start_line:self.end_line])


def load_problems(data_dir: Path = DATA_DIR) -> list[Problem]:
    """The 164 problems, each with its canonical program (the text most of its tasks agree on:
    a few differ by a blank line)."""
    with gzip.open(data_dir / DATA_FILE, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[row["task_id"].split("/", 1)[1].rsplit("/", 1)[0]].append(row)
    problems = []
    for task_id, group in grouped.items():
        texts = Counter(r["prompt"] + r["canonical_solution"] + r["suffix"] for r in group)
        program = texts.most_common(1)[0][0].strip("\n") + "\n"
        problems.append(Problem(task_id, group[0]["entry_point"], program, group[0]["test"]))
    problems.sort(key=lambda p: int(p.task_id.rsplit("/", 1)[1]))
    return problems


# --- running code ---------------------------------------------------------------------------------
_RUNNER = ("import resource, runpy, sys; lim = int(sys.argv[2]); "
           "resource.setrlimit(resource.RLIMIT_AS, (lim, lim)); "
           "runpy.run_path(sys.argv[1], run_name='__main__')")


def run_program(source: str, timeout: float = TEST_TIMEOUT_S) -> tuple[bool, str]:
    """Run `source` isolated: `python -I` in a fresh temp dir, its own session (killed whole at
    the timeout), a memory limit, no stdin, an environment with only PATH. (passed, error)."""
    with tempfile.TemporaryDirectory(prefix="edit-task-") as tmp:
        path = Path(tmp) / "candidate.py"
        path.write_text(source, encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _RUNNER, str(path), str(TEST_MEMORY_BYTES)], cwd=tmp,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
            env={"PATH": os.environ.get("PATH", ""), "HOME": tmp})
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return False, "timeout"
    if proc.returncode == 0:
        return True, ""
    lines = err.strip().splitlines()
    return False, lines[-1][:300] if lines else f"exit {proc.returncode}"


def replace_lines(document: str, start: int, end: int, new: str) -> str:
    """`document` with lines [start, end) replaced by `new` (which gets a final line break)."""
    lines = document.splitlines(True)
    return "".join(lines[:start]) + new.rstrip("\n") + "\n" + "".join(lines[end:])


def check_document(task: EditTask, document: str) -> tuple[bool, str]:
    """Whether the edited file does what the task asks: tests, extra asserts, ast checks."""
    if task.ast_check:
        problem = _ast_problem(task, document)
        if problem:
            return False, problem
    source = f"{document}\n\n{task.test}\n\ncheck({task.call})\n{task.extra}\n"
    return run_program(source)


def _ast_problem(task: EditTask, document: str) -> str:
    try:
        tree = ast.parse(document)
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg}"
    fn = _function(tree, task.call)
    if fn is None:
        return f"no function {task.call}"
    if task.ast_check == "docstring" and not ast.get_docstring(fn):
        return "no docstring"
    if task.ast_check == "hints":
        args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
        if fn.returns is None or any(a.annotation is None for a in args):
            return "missing annotations"
    return ""


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def function_lines(program: str, name: str) -> tuple[int, int]:
    """Lines [start, end) of the top-level function `name`, decorators included."""
    fn = _function(ast.parse(program), name)
    if fn is None:
        raise ValueError(f"no function {name}")
    first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    return first - 1, fn.end_lineno or fn.lineno


# --- mutations ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutation:
    line: int  # 1-based, as ast counts
    start: int  # columns in characters
    end: int
    new: str
    note: str

    def apply(self, program: str) -> str:
        lines = program.splitlines(True)
        text = lines[self.line - 1]
        lines[self.line - 1] = text[: self.start] + self.new + text[self.end:]
        return "".join(lines)


_COMPARE = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
            ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
_BINOP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "+"), ast.FloorDiv: ("//", "%"),
          ast.Mod: ("%", "//")}


def mutations(program: str, name: str) -> list[Mutation]:
    """Every single-line mutation site in the body of function `name` (docstring excluded)."""
    tree = ast.parse(program)
    fn = _function(tree, name)
    if fn is None:
        return []
    lines = program.splitlines(True)

    def col(line: int, offset: int) -> int:  # ast columns are UTF-8 byte offsets
        return len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "replace"))

    def span(node: ast.AST) -> tuple[int, int, int] | None:
        lineno, end_lineno = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if lineno is None or lineno != end_lineno:
            return None
        return lineno, col(lineno, node.col_offset), col(lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def between(a: ast.AST, b: ast.AST, symbol: str) -> tuple[int, int, int] | None:
        """The position of `symbol`, the only one between the end of `a` and the start of `b`."""
        sa, sb = span(a), span(b)
        if sa is None or sb is None or sa[0] != sb[0]:
            return None
        gap = lines[sa[0] - 1][sa[2]:sb[1]]
        words = gap.replace("(", " ").replace(")", " ").split()
        if words != [symbol]:
            return None
        at = sa[2] + gap.index(symbol)
        return sa[0], at, at + len(symbol)

    found: list[Mutation] = []
    body = fn.body[1:] if ast.get_docstring(fn) else fn.body
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            old, new = _COMPARE[type(node.ops[0])]
            where = between(node.left, node.comparators[0], old)
            if where:
                found.append(Mutation(*where, new, f"`{old}` -> `{new}`"))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
            old, new = _BINOP[type(node.op)]
            where = between(node.left, node.right, old)
            if where:
                found.append(Mutation(*where, new, f"`{old}` -> `{new}`"))
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            where = between(node.values[0], node.values[1], old)
            if where:
                found.append(Mutation(*where, new, f"`{old}` -> `{new}`"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            outer, inner = span(node), span(node.operand)
            if outer and inner and outer[0] == inner[0]:
                found.append(Mutation(outer[0], outer[1], inner[1], "", "`not` dropped"))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            where = span(node)
            if where:
                found.append(Mutation(*where, str(not node.value), f"`{node.value}` flipped"))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            where = span(node)
            if where:
                value = node.value + 1 if node.value in (0, 1) else node.value - 1
                found.append(Mutation(*where, str(value), f"constant {node.value} -> {value}"))
        elif isinstance(node, ast.Call):
            found.extend(_call_mutations(node, span, lines))
        elif isinstance(node, ast.Slice):
            for bound in (node.lower, node.upper):
                where = span(bound) if bound is not None and not isinstance(bound, ast.Constant) \
                    else None
                if where:
                    text = lines[where[0] - 1][where[1]:where[2]]
                    found.append(Mutation(*where, f"{text} + 1", f"slice bound `{text}` + 1"))
    return found


def _call_mutations(node: ast.Call, span: Callable[[ast.AST], tuple[int, int, int] | None],
                    lines: list[str]) -> Iterator[Mutation]:
    """range(...)'s stop off by one; the first two positional arguments swapped."""
    args = node.args
    if any(isinstance(a, ast.Starred) for a in args):
        return
    if isinstance(node.func, ast.Name) and node.func.id == "range" and args:
        stop = args[0] if len(args) == 1 else args[1]
        where = span(stop)
        if where and not isinstance(stop, ast.Constant):
            text = lines[where[0] - 1][where[1]:where[2]]
            yield Mutation(*where, f"{text} - 1", f"range stop `{text}` - 1")
    elif len(args) >= 2:
        a, b = span(args[0]), span(args[1])
        if a and b and a[0] == b[0]:
            line = lines[a[0] - 1]
            first, second = line[a[1]:a[2]], line[b[1]:b[2]]
            if first != second and line[a[2]:b[1]].strip() == ",":
                yield Mutation(a[0], a[1], b[2], f"{second}{line[a[2]:b[1]]}{first}",
                               f"arguments `{first}` and `{second}` swapped")


def fix_task(problem: Problem, seed: int) -> EditTask | None:
    """The problem with one bug that its tests catch, or None (original fails, or no mutant
    among the first tries fails)."""
    base = f"{problem.test}\n\ncheck({problem.entry_point})\n"
    if not run_program(f"{problem.program}\n\n{base}")[0]:
        return None
    sites = mutations(problem.program, problem.entry_point)
    random.Random(f"{seed}/{problem.task_id}").shuffle(sites)
    for mutation in sites[:MAX_MUTANT_TRIES]:
        mutant = mutation.apply(problem.program)
        try:
            compile(mutant, "<mutant>", "exec")
        except SyntaxError:
            continue
        if mutant == problem.program or run_program(f"{mutant}\n\n{base}")[0]:
            continue
        start, end = function_lines(mutant, problem.entry_point)
        return EditTask(f"fix/{problem.task_id}", "fix", f"Fix bugs in {problem.entry_point}.",
                        mutant, start, end, problem.test, problem.entry_point,
                        note=mutation.note)
    return None


def fix_tasks(problems: list[Problem], limit: int | None = None, seed: int = 0) -> list[EditTask]:
    """Fix tasks in problem order, building only as many as `limit` asks for."""
    tasks: list[EditTask] = []
    for problem in problems:
        if limit is not None and len(tasks) >= limit:
            break
        task = fix_task(problem, seed)
        if task is not None:
            tasks.append(task)
    return tasks


# --- other instructions ---------------------------------------------------------------------------
def _strip_docstring(program: str, name: str) -> str:
    fn = _function(ast.parse(program), name)
    assert fn is not None and ast.get_docstring(fn)
    doc = fn.body[0]
    lines = program.splitlines(True)
    del lines[doc.lineno - 1 : doc.end_lineno]
    return "".join(lines)


def _strip_hints(program: str, name: str) -> str:
    """The function without its argument and return annotations (its def on one line)."""
    fn = _function(ast.parse(program), name)
    assert fn is not None and fn.returns is not None and fn.lineno == fn.returns.end_lineno
    lines = program.splitlines(True)
    line = lines[fn.lineno - 1]
    cuts = [(a.col_offset + len(a.arg), a.annotation.end_col_offset) for a in fn.args.args
            if a.annotation is not None]
    arrow = line.rindex("->", 0, fn.returns.col_offset)
    cuts.append((len(line[:arrow].rstrip()), fn.returns.end_col_offset))
    for start, end in sorted(cuts, reverse=True):  # the def line is ASCII in these problems
        line = line[:start] + line[end:]
    lines[fn.lineno - 1] = line
    return "".join(lines)


def _raises(call: str, exc: str) -> str:
    return (f"try:\n    {call}\nexcept {exc}:\n    pass\nelse:\n"
            f"    raise AssertionError('{call} did not raise {exc}')\n")


# (problem, kind, instruction, extra asserts, the name check() calls, document transform)
OTHER_TASKS: list[tuple[str, str, str, str, str, Callable[[str, str], str] | None]] = [
    ("HumanEval/53", "param", "Add a parameter `scale` with default 1 that multiplies the result.",
     "assert add(2, 3, scale=2) == 10\nassert add(2, 3) == 5\n", "add", None),
    ("HumanEval/34", "param", "Add a parameter `reverse` with default False; when it is True, "
     "return the elements in descending order.",
     "assert unique([5, 3, 5, 2, 3], reverse=True) == [5, 3, 2]\n", "unique", None),
    ("HumanEval/35", "raise", "Make max_element raise ValueError when the list is empty.",
     _raises("max_element([])", "ValueError"), "max_element", None),
    ("HumanEval/55", "raise", "Make fib raise ValueError when n is negative.",
     _raises("fib(-1)", "ValueError"), "fib", None),
    ("HumanEval/53", "docstring", "Add a docstring to add.", "", "add", _strip_docstring),
    ("HumanEval/35", "docstring", "Add a docstring to max_element.", "", "max_element",
     _strip_docstring),
    ("HumanEval/2", "hints", "Add type hints to truncate_number.", "", "truncate_number",
     _strip_hints),
    ("HumanEval/13", "hints", "Add type hints to greatest_common_divisor.", "",
     "greatest_common_divisor", _strip_hints),
    ("HumanEval/23", "rename", "Rename strlen to string_length.", "", "string_length", None),
]


def other_tasks(problems: list[Problem]) -> list[EditTask]:
    by_id = {p.task_id: p for p in problems}
    tasks = []
    for task_id, kind, instruction, extra, call, transform in OTHER_TASKS:
        problem = by_id[task_id]
        document = transform(problem.program, problem.entry_point) if transform else problem.program
        start, end = function_lines(document, problem.entry_point)
        ast_check = kind if kind in ("docstring", "hints") else ""
        tasks.append(EditTask(f"{kind}/{task_id}", kind, instruction, document, start, end,
                              problem.test, call, extra, ast_check))
    return tasks


def build_tasks(limit: int | None = None, seed: int = 0, *, others: bool = True,
                data_dir: Path = DATA_DIR) -> list[EditTask]:
    """`limit` fix tasks (all when None), then the other instructions."""
    problems = load_problems(data_dir)
    return fix_tasks(problems, limit, seed) + (other_tasks(problems) if others else [])
