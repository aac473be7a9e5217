"""Fill-in-the-middle prompts as token lists, in the layout each model family was trained on.

Built as token ids, never as a string with markers: user text is tokenized with special tokens
*off* (a file containing ``<fim_middle>`` must not inject a control token), and
``create_completion(suffix=...)`` in llama-cpp-python 0.3.36 builds FIM with token id 0.

Layouts (ids in brackets are single control tokens):
- PSM: [PRE] prefix [SUF] suffix [MID]                    -> the model writes the middle
- SPM: [PRE][SUF] suffix [MID] prefix                     -> bigcode/Bavarian "SPM variant 2"
SPM keeps everything before the typed text stable, but only families trained with it may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Order = Literal["psm", "spm"]
Tokenize = Callable[[str], list[int]]


@dataclass(frozen=True)
class FimIds:
    """A model's FIM control-token ids (each marker must be one token)."""

    prefix: int
    suffix: int
    middle: int
    pad: int | None = None
    repo_name: int | None = None
    file_sep: int | None = None
    filename: int | None = None
    stop: frozenset[int] = field(default_factory=frozenset)  # end-of-text and family stop tokens


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    order: Order
    # Text cut from the end of the prefix so the model can re-choose the token at the cursor
    # (token healing); the generated text must start with it and it is removed before display.
    heal: str = ""
    header_tokens: int = 0  # leading tokens shared by every request (cross-file context, path)


def heal_split(prefix: str) -> tuple[str, str]:
    """Split off the trailing partial word or run of spaces that a BPE token may extend.

    A prefix ending in ``ret`` or in ``x = `` would otherwise force a token boundary the model
    rarely saw in training: it then writes ``return  x`` or ``ret urn``.
    """
    end = len(prefix)
    i = end
    while i > 0 and (prefix[i - 1].isalnum() or prefix[i - 1] == "_"):
        i -= 1
    if i == end:
        while i > 0 and prefix[i - 1] in " \t":
            i -= 1
        if i > 0 and prefix[i - 1] in "\r\n":
            return prefix, ""  # indentation at a line start: the model knows that boundary
    return prefix[:i], prefix[i:]


def build_prompt(
    prefix: str,
    suffix: str,
    ids: FimIds,
    tokenize: Tokenize,
    order: Order = "psm",
    header: Sequence[int] = (),
    heal: bool = True,
) -> Prompt:
    """Lay out `header` (stable extra context), then the FIM template around prefix and suffix."""
    kept, healed = heal_split(prefix) if heal else (prefix, "")
    pre = tokenize(kept)
    suf = tokenize(suffix)
    if order == "spm":
        body = [ids.prefix, ids.suffix, *suf, ids.middle, *pre]
    else:
        body = [ids.prefix, *pre, ids.suffix, *suf, ids.middle]
    return Prompt([*header, *body], order, healed, len(header))


TEMPLATE_OVERHEAD_TOKENS = 4  # the FIM markers plus a possible BOS
