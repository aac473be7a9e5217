"""Instruction edits, the reply side: golden cases (tests/golden/edit/postprocess.toml) of
`postprocess.edit.finish` from a document and a reply to the edited document, plus its parts."""

from __future__ import annotations

import dataclasses
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lsp_server import defaults
from lsp_server.context.selection import EditRange, Refusal, edit_range
from lsp_server.postprocess.edit import definition_name, fenced_blocks, finish, is_prose
from lsp_server.prompt.edit import (
    EditPrompt,
    EditRequest,
    assistant_prompt,
    chat_prompt,
    commit_prompt,
)

GOLDEN = Path(__file__).parent / "golden" / "edit" / "postprocess.toml"
CASES: list[dict[str, Any]] = tomllib.loads(GOLDEN.read_text(encoding="utf-8"))["case"]
CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def position(text: str, at: int) -> tuple[int, int]:
    """(line, column) of offset `at`, lines cut as pygls cuts them."""
    pieces = text[:at].splitlines(True)
    if not pieces:
        return 0, 0
    if pieces[-1] != pieces[-1].rstrip("\r\n"):
        return len(pieces), 0
    return len(pieces) - 1, len(pieces[-1])


def parse(document: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """The text without markers, and the selection's (or the cursor's) start and end."""
    if "║" in document:
        at = document.index("║")
        text = document.replace("║", "")
        return text, position(text, at), position(text, at)
    a = document.index("«")
    b = document.index("»") - 1
    text = document.replace("«", "").replace("»", "")
    return text, position(text, a), position(text, b)


def apply(text: str, rng: EditRange, new: str) -> str:
    lines = text.splitlines(True)

    def offset(pos: tuple[int, int]) -> int:
        return sum(len(line) for line in lines[: pos[0]]) + pos[1]

    return text[: offset(rng.start)] + new + text[offset(rng.end):]


def prompt_for(fmt: str, req: EditRequest) -> EditPrompt:
    if fmt == "chat":
        return chat_prompt(CHATML, req, "", "<|endoftext|>")
    return commit_prompt(req) if fmt == "commit" else assistant_prompt(req)


def run_case(case: dict[str, Any]) -> tuple[str | Refusal, str, EditRange]:
    text, start, end = parse(case["document"])
    rng = edit_range(text.splitlines(True), start, end)
    assert isinstance(rng, EditRange), rng
    req = EditRequest.of(rng, case.get("instruction", "Fix bugs in f."),
                         case.get("language", "python"), "src/m.py")
    prompt = prompt_for(case.get("format", "assistant"), req)
    if not case.get("prefill", True):
        prompt = dataclasses.replace(prompt, prefill="")
    reply = case["reply"] * case.get("repeat", 1)
    return finish(reply, rng, prompt, truncated=case.get("truncated", False)), text, rng


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    if case.get("context"):
        monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_BEFORE", 12)
        monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_AFTER", 4)
    new, text, rng = run_case(case)
    if "refused" in case:
        assert isinstance(new, Refusal), new
        assert new.kind == case["refused"]
        assert new.message
    else:
        assert isinstance(new, str), new
        assert apply(text, rng, new) == case["expected"]


def test_golden_cases_cover_every_refusal_of_a_reply() -> None:
    kinds = {c["refused"] for c in CASES if "refused" in c}
    assert kinds == {"prose", "empty_reply", "other_code", "too_long", "unchanged"}


def test_fenced_blocks() -> None:
    assert fenced_blocks("a\n```py\nx = 1\n```\nb\n````\ny\n````\n") == ["x = 1", "y"]
    assert fenced_blocks("```\nx\n  ```  \n") == ["x"]  # an indented closer still closes
    assert fenced_blocks("```python\nx = 1\n") == ["x = 1"]  # cut off: runs to the end
    assert fenced_blocks("```python\n```python\nx = 1\n```") == ["x = 1"]  # prefill + model's
    assert fenced_blocks("```python\n```\nx = 1\n```") == ["x = 1"]
    assert fenced_blocks("```python\n```\n") == [""]  # closed at once: empty, not the rest
    assert fenced_blocks("```python\nNo bug here.\n```\n") == ["No bug here."]  # chatter kept
    assert fenced_blocks("````\n```\nnot a closer\n````") == ["```\nnot a closer"]
    assert fenced_blocks("no fence here") == []


@pytest.mark.parametrize(("line", "prose"), [
    ("Here is the fixed code:", True),
    ("This fixes the off-by-one error.", True),
    ("Explanation:", True),
    ("return a + b", False),
    ("from typing import List", False),
    ("if x is not None:", False),
    ("    The docstring line.", False),  # indented: part of the code
    ("x = 1", False),
    ("def f(x):", False),
    ("", False),
])
def test_is_prose(line: str, prose: bool) -> None:
    assert is_prose(line) is prose


@pytest.mark.parametrize(("line", "name"), [
    ("def f(x):", "f"),
    ("async def fetch(url):", "fetch"),
    ("class Stack(list):", "Stack"),
    ("export function getJson(url) {", "getJson"),
    ("pub fn area<T>(r: T) -> f64 {", "area"),
    ("func (c *Cache) Get(key string) (string, bool) {", None),  # Go method: receiver first
    ("int main(void) {", "main"),
    ("const add = (a, b) => {", "add"),
    ("if (x > 0) {", None),
    ("return f(x)", None),
    ("x = compute(1)", None),
])
def test_definition_name(line: str, name: str | None) -> None:
    assert definition_name(line) == name


def _fn_range() -> EditRange:
    rng = edit_range(["def f(x):\n", "    return x - 1\n"], (0, 0), (2, 0))
    assert isinstance(rng, EditRange)
    return rng


def test_pathological_replies_finish_fast() -> None:
    rng = _fn_range()
    prompt = assistant_prompt(EditRequest.of(rng, "Fix bugs in f.", "python", "m.py"))
    for reply in ("a\n" * 500_000, "`" * 1_000_000, "```\n" * 200_000, " " * 1_000_000 + "x",
                  "Here is it.\n" * 100_000):
        t0 = time.perf_counter()
        out = finish(reply, rng, prompt)
        assert time.perf_counter() - t0 < 1.0, reply[:20]
        assert isinstance(out, Refusal)


def test_a_reply_never_touches_lines_outside_the_range() -> None:
    """Whatever the reply, the new text replaces exactly the range: the document around it is
    the same bytes (the range ends before its last line break)."""
    text = "a = 1\r\n\r\ndef f(x):\r\n    return x - 1\r\n\r\nb = 2\r\n"
    rng = edit_range(text.splitlines(True), (3, 5), (3, 5))
    assert isinstance(rng, EditRange)
    prompt = assistant_prompt(EditRequest.of(rng, "Fix bugs in f.", "python", "m.py"))
    new = finish("def f(x):\n    return x + 1\n\n\n```", rng, prompt)
    assert isinstance(new, str)
    assert apply(text, rng, new) == "a = 1\r\n\r\ndef f(x):\r\n    return x + 1\r\n\r\nb = 2\r\n"
