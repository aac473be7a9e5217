"""Prompts for "edit this code as instructed", one per model family.

- Instruct models (the GGUF has a chat template): the template rendered in the same sandbox as
  explain's (`prompt.template`), a system message asking for the rewritten code only, and the
  assistant's turn *prefilled* with the opening fence, so even a small model writes code first.
- StarCoder-family base models whose vocabulary has `<commit_before>`, `<commit_msg>` and
  `<commit_after>`: the git-commit format they were trained on (StarCoder's commits data, the
  format of HumanEvalFix's StarCoder runs): `<commit_before>{code}<commit_msg>{instruction}
  <commit_after>`, and the model writes the code after the commit.
- Any other base model: Tech-Assistant-style dialogues (as explain's), ending in the assistant's
  opening fence.

A prompt is a sequence of pieces, each either template text (tokenized with special tokens on)
or user text (code, instruction, path: tokenized with special tokens *off*, so a file or an
instruction can never inject a turn or commit marker). The model sees the selection dedented;
`postprocess.edit` puts the indentation back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lsp_server import defaults
from lsp_server.context.selection import EditRange, Refusal
from lsp_server.prompt.explain import ASSISTANT, HUMAN, TURN_SEPARATOR

log = logging.getLogger(__name__)

EditFormat = Literal["chat", "commit", "assistant"]
COMMIT_BEFORE, COMMIT_MSG, COMMIT_AFTER = "<commit_before>", "<commit_msg>", "<commit_after>"
COMMIT_TOKENS = (COMMIT_BEFORE, COMMIT_MSG, COMMIT_AFTER)
# Markers that end a commit's new code: end of text, the next commit, or another document kind
# of StarCoder's training data.
COMMIT_STOPS = ("<|endoftext|>", *COMMIT_TOKENS, "<file_sep>", "<filename>", "<reponame>",
                "<gh_stars>", "<issue_start>", "<jupyter_start>")
FENCE_CLOSE = "\n```"
# Chat templates' end-of-turn markers, in case a detokenizer shows them as text.
TURN_ENDS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")
_PLACEHOLDER = "\x00STARCODER_EDIT\x00"
# Fence labels for languageIds that differ from what Markdown fences use.
_FENCE_NAMES = {"typescriptreact": "tsx", "javascriptreact": "jsx", "shellscript": "bash",
                "plaintext": ""}

SYSTEM = ("You are a careful programmer who edits code exactly as instructed. Reply with the "
          "complete rewritten code to edit, in one fenced code block, and nothing else: no "
          "explanation, and not the surrounding code. Keep its indentation, and keep everything "
          "the instruction does not ask to change exactly as it is.")

PREAMBLE = f"""\
Below are conversations between programmers and a technical assistant. The programmer shows \
code and says how to change it; the assistant answers with the whole rewritten code in one code \
block and nothing else, changing only what was asked.
-----
{HUMAN} Edit this Python code from utils/text.py.
Code to edit:
```python
def is_palindrome(s):
    cleaned = [c.lower() for c in s if c.isalnum()]
    return cleaned == cleaned[1:]
```
Instruction: Fix bugs in is_palindrome.

{ASSISTANT} ```python
def is_palindrome(s):
    cleaned = [c.lower() for c in s if c.isalnum()]
    return cleaned == cleaned[::-1]
```
-----
{HUMAN} Edit this JavaScript code from src/http.js.
Code to edit:
```javascript
async function getJson(url) {{
  const res = await fetch(url);
  return res.json();
}}
```
Instruction: Add a parameter `tries` with default 3 and retry failed requests.

{ASSISTANT} ```javascript
async function getJson(url, tries = 3) {{
  for (let i = 0; i < tries; i++) {{
    const res = await fetch(url);
    if (res.ok) return res.json();
  }}
  throw new Error(`GET ${{url}} failed`);
}}
```
-----
"""


@dataclass(frozen=True)
class EditRequest:
    """Everything a prompt says: the code as the model sees it (LF, dedented) and the instruction."""

    code: str
    instruction: str
    language: str
    path: str
    before: str = ""  # the lines just above (shown for reference, not to be rewritten)
    after: str = ""
    line_before: str = ""  # a part of a line: the rest of that line around it
    line_after: str = ""

    @classmethod
    def of(cls, rng: EditRange, instruction: str, language: str, path: str) -> EditRequest:
        return cls(rng.code, instruction.strip(), language, path or "untitled", rng.before,
                   rng.after, rng.line_before, rng.line_after)


@dataclass(frozen=True)
class EditPrompt:
    """A prompt as pieces (text, is_template), and how to read and stop its reply."""

    format: EditFormat
    pieces: tuple[tuple[str, bool], ...]
    prefill: str  # what the prompt's last piece already wrote of the reply (an opening fence)
    stops: tuple[str, ...]  # the reply (after `prefill`) is complete once it contains one
    request: EditRequest

    def text(self) -> str:
        """The whole prompt as text (a remote engine; logs)."""
        return "".join(text for text, _ in self.pieces)

    def should_stop(self, reply: str) -> bool:
        """Whether the decoded `reply` already holds a complete answer."""
        seen = self.prefill[-1:] + reply  # a fence closing at once follows the prefill's "\n"
        return any(stop in seen for stop in self.stops)

    def tokenize(self, special: Callable[[str], list[int]], plain: Callable[[str], list[int]]
                 ) -> list[int]:
        """Token ids: template pieces through `special`, user pieces through `plain`."""
        return [t for text, tmpl in self.pieces if text for t in (special if tmpl else plain)(text)]


def choose_format(chat_template: str | None, is_single_token: Callable[[str], bool]) -> EditFormat:
    """Chat for instruct models; commits when the vocabulary has all three commit markers (only
    StarCoder-family vocabularies do, and they were trained on them); else the assistant."""
    if chat_template:
        return "chat"
    if all(is_single_token(t) for t in COMMIT_TOKENS):
        return "commit"
    return "assistant"


def fence_name(language: str) -> str:
    return _FENCE_NAMES.get(language, language)


def question(req: EditRequest) -> str:
    """The user's part of a chat or assistant prompt: where the code is, the code, what to do."""
    fence = fence_name(req.language)
    lang = req.language if fence else "code"
    parts = [f"Edit this {lang} code from {req.path}."]
    if req.before.strip():
        parts.append(f"It comes after these lines (do not repeat them):\n```{fence}\n"
                     f"{req.before}\n```")
    if req.line_before.strip() or req.line_after.strip():
        parts.append(f"It is part of this line:\n```{fence}\n"
                     f"{req.line_before}{req.code}{req.line_after}\n```\n"
                     "Rewrite only the part below, not the whole line.")
    parts.append(f"Code to edit:\n```{fence}\n{req.code}\n```")
    if req.after.strip():
        parts.append(f"It is followed by these lines (do not repeat them):\n```{fence}\n"
                     f"{req.after}\n```")
    parts.append(f"Instruction: {req.instruction}")
    return "\n".join(parts)


def chat_prompt(template: str, req: EditRequest, bos: str, eos: str) -> EditPrompt:
    """The model's own chat template (sandboxed: `prompt.template`) around our question, with
    the assistant's turn opened by a fence. Raises `template.TemplateError`."""
    from lsp_server.prompt.template import render

    rendered = render(template, [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": _PLACEHOLDER}], bos, eos)
    before, _, after = rendered.partition(_PLACEHOLDER)
    prefill = f"```{fence_name(req.language)}\n"
    stops = (FENCE_CLOSE, *TURN_ENDS, *((eos,) if eos else ()))
    return EditPrompt("chat", ((before, True), (question(req), False), (after + prefill, True)),
                      prefill, stops, req)


def commit_prompt(req: EditRequest) -> EditPrompt:
    """`<commit_before>{code}<commit_msg>{instruction}<commit_after>`; the code ends in a line
    break, as the files of the commits did."""
    return EditPrompt("commit", ((COMMIT_BEFORE, True), (req.code.rstrip("\n") + "\n", False),
                                 (COMMIT_MSG, True), (req.instruction, False),
                                 (COMMIT_AFTER, True)), "", COMMIT_STOPS, req)


def assistant_prompt(req: EditRequest) -> EditPrompt:
    """The dialogues above, then our question, and the assistant's opening fence."""
    prefill = f"```{fence_name(req.language)}\n"
    stops = (FENCE_CLOSE, TURN_SEPARATOR.rstrip("\n"), f"\n{HUMAN}", *TURN_ENDS)
    return EditPrompt("assistant", ((PREAMBLE + f"{HUMAN} ", True), (question(req), False),
                                    (f"\n\n{ASSISTANT} {prefill}", True)), prefill, stops, req)


def edit_prompt(req: EditRequest, *, chat_template: str | None, bos: str = "", eos: str = "",
                is_single_token: Callable[[str], bool] = lambda _: False) -> EditPrompt:
    """The prompt for this model: its chat template when it renders, else a base-model format."""
    fmt = choose_format(chat_template, is_single_token)
    if fmt == "chat" and chat_template:
        from lsp_server.prompt.template import TemplateError

        try:
            return chat_prompt(chat_template, req, bos, eos)
        except TemplateError as exc:  # a template we cannot render: the base-model prompt
            log.warning("chat template failed (%s); using the plain edit prompt", exc)
            fmt = "commit" if all(is_single_token(t) for t in COMMIT_TOKENS) else "assistant"
    return commit_prompt(req) if fmt == "commit" else assistant_prompt(req)


def warm_chat_template(template: str, bos: str, eos: str) -> None:
    """Render the template once now (off the engine's worker); `chat_prompt` then hits the cache."""
    from lsp_server.prompt.template import TemplateError

    with contextlib.suppress(TemplateError):
        chat_prompt(template, EditRequest("", "", "", ""), bos, eos)


def max_new_tokens(code_tokens: int) -> int:
    """Tokens the rewrite may take: the selection's size grown by `EDIT_GROWTH`, plus room."""
    grown = int(code_tokens * defaults.EDIT_GROWTH) + defaults.EDIT_EXTRA_TOKENS
    return min(defaults.EDIT_MAX_TOKENS, grown)


def too_many_tokens(code_tokens: int) -> Refusal | None:
    """The token cap on a selection, once the engine has counted it (the character cap of
    `context.selection` comes first and is cheap; dense code can pack more tokens into it)."""
    if code_tokens <= defaults.EDIT_MAX_SELECTION_TOKENS:
        return None
    return Refusal("too_large", f"The selection has {code_tokens:,} tokens; edits take at most "
                                f"{defaults.EDIT_MAX_SELECTION_TOKENS:,}: select a smaller part.")
