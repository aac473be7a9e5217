"""The new text of an edited range, from a model's reply — or a refusal that says why not.

Not part of the completion pipeline: an edit's reply is a whole rewrite, read once at the end.

1. Extract the code: the reply cut at its first stop marker; for a commit prompt, everything
   before it; else the fenced block that rewrites the selection (with or without a language tag,
   closed or cut off; when several, the one closest to the original that is not a copy of it),
   or, with no fence, the reply without the prose lines that open or close it.
2. Refuse what is not code for the selection: nothing, prose only, far longer than the
   selection can grow to, or code that defines other names than the selection did (unless the
   instruction names them: "rename f to g").
3. Put it in place: lines that echo the context shown around the selection are dropped; the
   indentation is re-based on the selection's (the prompt showed it dedented; a model may keep or
   drop any common indent), tabs stay tabs; every line the model left as it was (ignoring trailing
   whitespace and tabs-vs-spaces) is the original line byte for byte, line break included; new
   lines get the selection's line break, and the text ends as the original did.

Everything is plain string scanning, linear in the reply (no regex runs on model or document
text except `blocks.BLOCK_START` on short lines), and the reply is bounded before any matching.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from lsp_server import defaults
from lsp_server.context.blocks import BLOCK_START, c_signature
from lsp_server.context.selection import EditRange, Refusal, common_indent, split_eol
from lsp_server.prompt.edit import EditPrompt

_CODE_CHARS = frozenset("{}[]()=;<>+*/%&|^~$@#\\`\"'")
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_CONTROL = ("if ", "if(", "for ", "for(", "while", "switch", "else", "try", "catch", "do ",
            "return", "elif")


def finish(reply: str, rng: EditRange, prompt: EditPrompt, *, truncated: bool = False
           ) -> str | Refusal:
    """The range's new text for the model's `reply` (decoded after the prompt), or why not.

    `truncated`: the decode hit its token limit before a stop (its code may end mid-statement,
    unless the block was closed already)."""
    allowed = int(len(rng.text) * defaults.EDIT_MAX_REPLY_GROWTH) + defaults.EDIT_REPLY_SLACK_CHARS
    full = prompt.prefill + reply
    if len(full) > 4 * allowed:  # only ever scan a bounded text
        full = full[: 4 * allowed]
    if truncated and not prompt.should_stop(reply):
        return Refusal("too_long", "The model's reply was cut at its length limit before the "
                                   "code ended: not applied.")
    code = extract(full, prompt, rng.code)
    if isinstance(code, Refusal):
        return code
    lines = code.split("\n")
    if rng.whole_lines:
        lines = _drop_echoed_context(lines, rng)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return Refusal("empty_reply", "The model's reply held no code.")
    if sum(len(line) + 1 for line in lines) > allowed:
        return Refusal("too_long", f"The model's reply is far longer than the selection "
                                   f"({len(code):,} characters for {len(rng.text):,}): not applied.")
    if rng.whole_lines:
        other = _other_definitions(rng.code.split("\n"), lines, prompt.request.instruction)
        if other is not None:
            return other
        lines = _reindent(lines, rng)
    else:
        lines = _unwrap_part(lines, rng)
    text = _restore_untouched(lines, rng)
    if text == rng.text:
        return Refusal("unchanged", "The model proposed no change.")
    return text


# --- 1. extraction ------------------------------------------------------------------------------
def extract(full: str, prompt: EditPrompt, original: str) -> str | Refusal:
    """The code in a reply (prefill included), LF line breaks, before any re-indenting."""
    full = full.replace("\r\n", "\n").replace("\r", "\n")
    markers = [s for s in prompt.stops if s.strip("\n") and not s.startswith("\n```")]
    cut = min([i for i in (full.find(m) for m in markers) if i >= 0], default=len(full))
    full = full[:cut]
    if prompt.format == "commit":
        return full.strip("\n") if full.strip() else Refusal("empty_reply",
                                                              "The model's reply held no code.")
    blocks = fenced_blocks(full)
    if blocks:
        code = _best_block(blocks, original)
        if all(not x.strip() or is_prose(x) for x in code.split("\n")) and code.strip():
            return Refusal("prose", f"The model answered in words instead of code: {_quote(code)}")
        return code
    lines = full.split("\n")
    while lines and (not lines[0].strip() or is_prose(lines[0])):
        lines.pop(0)
    while lines and (not lines[-1].strip() or is_prose(lines[-1])):
        lines.pop()
    if not lines:
        if full.strip():
            return Refusal("prose", "The model answered in words instead of code: "
                                    f"{_quote(full)}")
        return Refusal("empty_reply", "The model's reply was empty.")
    return "\n".join(lines)


def fenced_blocks(text: str) -> list[str]:
    """The contents of every ``` or ~~~ fenced block (an unclosed last one runs to the end).

    A fence right after an opener, or after nothing but chatter, is the model opening its own
    block (after the prompt's prefilled fence): it restarts the block instead of closing it. A
    block left with nothing but that chatter is returned as the chatter (the caller refuses it as
    prose), and one left empty as "" (nothing to apply)."""
    blocks: list[str] = []
    current: list[str] | None = None
    fence = ""
    dropped: list[str] = []  # chatter a restart skipped
    restarted = False
    for line in text.split("\n"):
        stripped = line.strip()
        run = _fence_run(stripped)
        if current is None:
            if run:
                fence, current, dropped, restarted = run, [], [], False
            continue
        bare = bool(run) and not stripped.strip(run[0])
        if run and (not bare or len(run) >= len(fence)) and all(
                not x.strip() or is_prose(x) for x in current):
            dropped += current
            current, restarted = [], True
            fence = run if not bare else fence
        elif bare and len(run) >= len(fence) and run[0] == fence[0]:
            blocks.append("\n".join(current))
            current = None
        else:
            current.append(line)
    if current is not None:
        body = "\n".join(current).rstrip("\n")
        if body.strip():
            blocks.append(body)
        elif any(x.strip() for x in dropped):
            blocks.append("\n".join(dropped).strip("\n"))
        elif restarted:
            blocks.append("")
    return blocks


def _fence_run(stripped: str) -> str:
    """The fence (```, ~~~~, ...) a line opens with, or ""."""
    for ch in "`~":
        n = len(stripped) - len(stripped.lstrip(ch))
        if n >= 3:
            return ch * n
    return ""


def _best_block(blocks: list[str], original: str) -> str:
    """The block closest to the original that is not a copy of it (models often show the code
    before and after the change); the only block when there is one."""
    if len(blocks) == 1:
        return blocks[0]
    keys = [_key(b) for b in original.split("\n")]
    changed = [b for b in blocks if [_key(x) for x in b.strip("\n").split("\n")] != keys] or blocks
    return max(changed, key=lambda b: difflib.SequenceMatcher(
        None, keys, [_key(x) for x in b.split("\n")]).ratio())


def is_prose(line: str) -> bool:
    """A sentence of chatter ("Here is the fixed code:"), not a line of code: unindented, three
    words or more and at most one code character, or a capitalised label ending in a colon."""
    if not line or line[0] in " \t":
        return False
    stripped = line.strip()
    words = stripped.split()
    if not stripped or not stripped[0].isalpha():
        return False
    if len(words) < 3:  # a label: "Explanation:", "Fixed code:"
        return stripped[0].isupper() and stripped.endswith(":") and not any(
            ch in _CODE_CHARS for ch in stripped)
    if stripped.startswith(_CONTROL) or stripped.endswith(("{", ",", "(")):
        return False
    code_chars = sum(ch in _CODE_CHARS for ch in stripped)
    return code_chars <= 1 and (stripped[0].isupper() or stripped[-1] in ".:!?")


def _quote(text: str) -> str:
    one = " ".join(text.split())
    return f'"{one[:80]}…"' if len(one) > 80 else f'"{one}"'


# --- 2. is it code for the selection? -------------------------------------------------------------
def definition_name(line: str) -> str | None:
    """The name a line defines (`def f(`, `class A:`, `fn f<T>(`, `int main(void) {`,
    `const f = (a) => {`), or None."""
    if len(line) > defaults.MATCH_LINE_CHARS:
        return None
    m = BLOCK_START.match(line)
    if m:
        rest = line[m.end():].lstrip()
        return _leading_ident(rest) or None
    head = line.strip()
    if not c_signature(line) or head.startswith(_CONTROL):
        return None
    before = line[: line.find("(")].rstrip()
    if before.endswith("="):
        before = before[:-1].rstrip()
    return _trailing_ident(before) or None


def _leading_ident(text: str) -> str:
    n = 0
    while n < len(text) and text[n] in _IDENT_CHARS:
        n += 1
    return text[:n] if n and not text[0].isdigit() else ""


def _trailing_ident(text: str) -> str:
    n = len(text)
    while n > 0 and text[n - 1] in _IDENT_CHARS:
        n -= 1
    name = text[n:]
    return name if name and not name[0].isdigit() else ""


def _top_names(lines: Sequence[str]) -> list[str]:
    """Names defined by the least indented lines (the selection's own definitions, not nested)."""
    indent = common_indent(lines)
    names = []
    for line in lines:
        if line.strip() and line.startswith(indent) and line[len(indent)] not in " \t":
            name = definition_name(line[len(indent):])
            if name:
                names.append(name)
    return names


def _other_definitions(original: Sequence[str], new: Sequence[str], instruction: str
                       ) -> Refusal | None:
    """A refusal when the selection defines names and the reply keeps none of them."""
    before = _top_names(original)
    if not before:
        return None
    after = _top_names(new)
    if set(before) & set(after) or any(name in instruction for name in after):
        return None
    if not after:
        return Refusal("other_code", f"The model's reply does not define `{before[0]}` (it "
                                     "wrote only part of it, or other code): not applied.")
    return Refusal("other_code", f"The model's reply defines `{after[0]}` instead of "
                                 f"`{before[0]}`: not applied.")


# --- 3. putting it in place ---------------------------------------------------------------------
def _drop_echoed_context(lines: list[str], rng: EditRange) -> list[str]:
    """Without leading lines that repeat the context above, nor trailing ones that repeat the
    context below (small models rewrite what they were shown)."""
    code = [x.strip() for x in rng.code.split("\n") if x.strip()]
    above = {x.strip() for x in rng.before.split("\n") if x.strip()}
    below = {x.strip() for x in rng.after.split("\n") if x.strip()}
    first, last = (code[0], code[-1]) if code else ("", "")
    start, stop = 0, len(lines)
    while start < stop and (not lines[start].strip() or lines[start].strip() in above) \
            and lines[start].strip() != first:
        start += 1
    while stop > start and (not lines[stop - 1].strip() or lines[stop - 1].strip() in below) \
            and lines[stop - 1].strip() != last:
        stop -= 1
    return lines[start:stop]


def _reindent(lines: list[str], rng: EditRange) -> list[str]:
    """The lines at the selection's indentation, in its indentation style."""
    cut = len(common_indent(lines))
    body = [line[cut:] if line.strip() else "" for line in lines]
    original = [x for x in rng.code.split("\n") if x.strip()]
    tabs = rng.indent.startswith("\t") or any(x.startswith("\t") for x in original)
    if tabs and not any(x.startswith("\t") for x in body):
        unit = min((len(x) - len(x.lstrip(" ")) for x in body if x.startswith(" ")), default=0)
        if unit:
            body = [_spaces_to_tabs(x, unit) for x in body]
    return [rng.indent + x if x else "" for x in body]


def _spaces_to_tabs(line: str, unit: int) -> str:
    lead = len(line) - len(line.lstrip(" "))
    return "\t" * (lead // unit) + " " * (lead % unit) + line[lead:]


def _unwrap_part(lines: list[str], rng: EditRange) -> list[str]:
    """For a part of a line: without `inline backticks` and without the rest of the line when the
    model repeated the whole line."""
    text = "\n".join(lines).strip()
    if len(text) > 1 and text[0] == text[-1] == "`" and "\n" not in text:
        text = text.strip("`")
    head, tail = rng.line_before.strip(), rng.line_after.strip()
    if (head or tail) and text.startswith(head) and text.endswith(tail) \
            and len(text) >= len(head) + len(tail) and not rng.code.startswith(head):
        text = text[len(head): len(text) - len(tail)].strip()
    return text.split("\n")


def _key(line: str) -> str:
    """What makes two lines the same line: their text, tabs as 4 spaces, no trailing spaces."""
    return line.expandtabs(4).rstrip()


def _restore_untouched(lines: list[str], rng: EditRange) -> str:
    """The new lines joined, where every line equal to an original one is that line exactly."""
    old = rng.text.splitlines(True) or [""]
    old_split = [split_eol(x) for x in old]
    final_break = old_split[-1][1]
    matcher = difflib.SequenceMatcher(None, [_key(b) for b, _ in old_split],
                                      [_key(x) for x in lines])
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(old_split[i1:i2])
        else:
            out.extend((x, "") for x in lines[j1:j2])
    pieces = [body + (brk or rng.eol) for body, brk in out[:-1]]
    pieces.append(out[-1][0] + final_break)
    return "".join(pieces)
