"""Token-budgeted prefix/suffix windows around the cursor whose edges stay put while the user types.

Why the edges matter: llama.cpp reuses the KV cache only for the longest common *token prefix* of
consecutive prompts. If the window's first line slid by one line per keystroke, every request would
re-evaluate the whole prompt (~35 s for 4K tokens on 2 cores). So edges move on a grid of
``WINDOW_LINE_STEP`` lines: the prefix start is the first grid line that fits the budget, and it
only moves when the text before the cursor grows past a grid step.

Token counts come from the model's own tokenizer, line by line (cached). The sum of per-line counts
can differ slightly from the count of the joined text (BPE merges across a newline), so the prompt
builder re-checks the exact total and asks for a smaller budget if needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsp_server import defaults

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Window:
    """The text the model sees on each side of the cursor."""

    prefix: str
    suffix: str
    start_line: int  # first document line in the prefix
    end_line: int  # one past the last document line in the suffix
    prefix_tokens: int  # estimated with the per-line counter
    suffix_tokens: int
    prefix_cut: bool  # True when text before the window was left out
    suffix_cut: bool


class LineTokenCache:
    """Counts tokens per line with a bounded memo: lines rarely change between keystrokes."""

    def __init__(self, count: TokenCounter, max_entries: int = 50_000,
                 max_chars: int = defaults.TOKEN_MEMO_MAX_CHARS) -> None:
        self._count = count
        self._memo: dict[str, int] = {}
        self._max = max_entries
        self._max_chars = max_chars
        self._chars = 0  # characters held as keys: a long line makes every keystroke a new key

    def __call__(self, text: str) -> int:
        n = self._memo.get(text)
        if n is None:
            if len(self._memo) >= self._max or self._chars + len(text) > self._max_chars:
                self._memo.clear()
                self._chars = 0
            n = self._memo[text] = self._count(text)
            self._chars += len(text)
        return n


def _tail_that_fits(text: str, budget: int, count: TokenCounter) -> str:
    """The longest end of `text` within `budget` tokens, cut on a character grid for stability."""
    if budget <= 0 or not text:
        return ""
    step = defaults.LONG_LINE_CHAR_STEP
    most = budget * defaults.MAX_CHARS_PER_TOKEN  # more cannot fit: never tokenize it
    if len(text) > most:
        text = text[(len(text) - most) // step * step + step :]  # still on the same grid
    if count(text) <= budget:
        return text
    lo, hi = 0, len(text) // step + 1  # number of grid steps dropped from the left
    while lo < hi:
        mid = (lo + hi) // 2
        if count(text[mid * step :]) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return text[lo * step :]


def _head_that_fits(text: str, budget: int, count: TokenCounter) -> str:
    """The longest start of `text` within `budget` tokens, cut on a character grid."""
    if budget <= 0 or not text:
        return ""
    step = defaults.LONG_LINE_CHAR_STEP
    text = text[: budget * defaults.MAX_CHARS_PER_TOKEN // step * step or step]
    if count(text) <= budget:
        return text
    lo, hi = 0, len(text) // step  # number of grid steps kept
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[: mid * step]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[: lo * step]


def _prefix(
    lines: Sequence[str], line: int, head: str, budget: int, count: TokenCounter, step: int
) -> tuple[str, int, int, bool]:
    """(text, start_line, tokens, cut) for the text before the cursor."""
    used = count(head)
    if used > budget:
        text = _tail_that_fits(head, budget, count)
        return text, line, count(text), True
    first = line
    while first > 0:
        n = count(lines[first - 1])
        if used + n > budget:
            break
        used += n
        first -= 1
    cut = first > 0
    if cut:
        # Snap forward to the grid so the edge only moves every `step` lines.
        snapped = min(line, -(-first // step) * step)
        used -= sum(count(lines[i]) for i in range(first, snapped))
        first = snapped
    return "".join(lines[first:line]) + head, first, used, cut


def _suffix(
    lines: Sequence[str], line: int, tail: str, budget: int, count: TokenCounter, step: int
) -> tuple[str, int, int, bool]:
    """(text, end_line, tokens, cut) for the text after the cursor."""
    used = count(tail)
    if used > budget:
        text = _head_that_fits(tail, budget, count)
        return text, line + 1, count(text), True
    end = line + 1
    while end < len(lines):
        n = count(lines[end])
        if used + n > budget:
            break
        used += n
        end += 1
    cut = end < len(lines)
    if cut:
        # Snap back to a grid counted from the document's end: a line inserted at the cursor
        # (Enter) then keeps the suffix's last line, so its cached tokens are still the prompt's
        # tail (a grid counted from the top would move every kept token by a line).
        snapped = len(lines) - -(-(len(lines) - end) // step) * step
        if snapped > line + 1:  # too close to the cursor to snap: keep the exact edge
            used -= sum(count(lines[i]) for i in range(snapped, end))
            end = snapped
    return tail + "".join(lines[line + 1 : end]), end, used, cut


def editor_lines(lines: Sequence[str]) -> Sequence[str]:
    """The document's lines as the editor numbers them.

    After a final newline the editor shows one more, empty line (where the cursor sits when
    typing at the end of a file); a split with line endings kept has no entry for it, and
    clamping the cursor to the line above would put that whole line after the cursor.
    """
    if not lines or lines[-1].endswith(("\n", "\r")):
        return (*lines, "")
    return lines


def build_window(
    lines: Sequence[str],
    line: int,
    column: int,
    budget: int,
    count: TokenCounter,
    prefix_share: float = defaults.PREFIX_SHARE,
    line_step: int = defaults.WINDOW_LINE_STEP,
) -> Window:
    """Split `budget` tokens between the text before and after (line, column).

    `lines` keep their line endings; `column` counts code points. Budget one side leaves unused
    flows to the other, so a cursor near the top of a file still gets a long suffix.
    """
    if not lines:
        return Window("", "", 0, 0, 0, 0, False, False)
    line = max(0, min(line, len(lines) - 1))
    text = lines[line]
    column = max(0, min(column, len(text.rstrip("\r\n"))))
    head, tail = text[:column], text[column:]
    budget = max(0, budget)
    pre_budget = int(budget * prefix_share)
    prefix, first, pre_used, pre_cut = _prefix(lines, line, head, pre_budget, count, line_step)
    suf_budget = budget - (pre_used if not pre_cut else pre_budget)
    suffix, end, suf_used, suf_cut = _suffix(lines, line, tail, suf_budget, count, line_step)
    if pre_cut and not suf_cut and suf_used < suf_budget:
        # The suffix did not need its share: give the rest to the prefix.
        prefix, first, pre_used, pre_cut = _prefix(lines, line, head, budget - suf_used, count,
                                                   line_step)
    return Window(prefix, suffix, first, end, pre_used, suf_used, pre_cut, suf_cut)
