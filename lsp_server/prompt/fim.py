"""Fill-in-the-middle prompts as token lists, in the layout each model family was trained on.

Built as token ids, never as a string with markers: user text is tokenized with special tokens
*off* (a file containing ``<fim_middle>`` must not inject a control token), and
llama-cpp-python 0.3.36's own FIM path (the `suffix` argument of its completion call) uses
token id 0 for the markers.

The layout is generic over the piece type: a remote engine that only takes a text prompt gets the
same layout with the markers' *strings* as pieces and each text as one piece (`FimIds[str]`,
joined by `Prompt.text`), so the two backends cannot drift apart.

Layouts (ids in brackets are single control tokens):
- PSM: [PRE] prefix [SUF] suffix [MID]                    -> the model writes the middle
- SPM: [PRE][SUF] suffix [MID] prefix                     -> bigcode/Bavarian "SPM variant 2"
SPM keeps everything before the typed text stable, but only families trained with it may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

Order = Literal["psm", "spm"]
T = TypeVar("T")  # a token id (local engine) or a text piece (remote engine taking a text prompt)
Tokenize = Callable[[str], list[T]]


@dataclass(frozen=True)
class FimIds(Generic[T]):
    """A model's FIM control-token ids (each marker must be one token), or their strings."""

    prefix: T
    suffix: T
    middle: T
    pad: T | None = None
    repo_name: T | None = None
    file_sep: T | None = None
    filename: T | None = None
    stop: frozenset[T] = field(default_factory=frozenset)  # end-of-text and family stop tokens
    document_end: tuple[T, ...] = ()  # end-of-text id that separates training documents


@dataclass(frozen=True)
class Prompt(Generic[T]):
    ids: list[T]
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


@dataclass(frozen=True)
class Header(Generic[T]):
    """Cross-file context and the current path, in the family's own training format.

    `ids` go before the FIM template (repo/file tokens); `text` goes at the start of the prefix
    for families without such tokens (a path comment per snippet). Either way it heads the prompt
    and changes rarely, so the KV cache keeps it.
    """

    ids: tuple[T, ...] = ()
    text: str = ""


def build_header(
    snippets: Sequence[tuple[str, str]],
    current_path: str,
    ids: FimIds[T],
    tokenize: Tokenize[T],
    *,
    repo: str,
    comment: Callable[[str, str], str],
    language: str,
) -> Header[T]:
    """Format (path, text) snippets and the current path for the model.

    - repo tokens (StarCoder2, Qwen2.5-Coder, as llama.cpp's /infill does):
      [repo_name] repo\n ([file_sep] path\n text)* [file_sep] current\n
    - StarCoder's <filename> (documents separated by end-of-text, as in its training data):
      ([filename] path\n text [eot])* [filename] current\n
    - otherwise a comment with the path above each snippet, inside the prefix.
    Without snippets there is no header at all: the prompt is then exactly the family's reference
    FIM layout, which is what the quality harness measured best.
    """
    if not snippets:
        return Header()
    if ids.repo_name is not None and ids.file_sep is not None:
        out = [ids.repo_name, *tokenize(f"{repo}\n")]
        for path, text in snippets:
            out += [ids.file_sep, *tokenize(f"{path}\n{text}")]
        out += [ids.file_sep, *tokenize(f"{current_path}\n")]
        return Header(tuple(out))
    if ids.filename is not None:
        out = []
        for path, text in snippets:
            out += [ids.filename, *tokenize(f"{path}\n{text}"), *ids.document_end]
        out += [ids.filename, *tokenize(f"{current_path}\n")]
        return Header(tuple(out))
    parts = [f"{comment(language, path)}\n{text}\n" for path, text in snippets]
    return Header(text="".join(parts) + f"{comment(language, current_path)}\n")


def build_prompt(
    prefix: str,
    suffix: str,
    ids: FimIds[T],
    tokenize: Tokenize[T],
    order: Order = "psm",
    header: Header[T] | None = None,
    heal: bool = True,
) -> Prompt[T]:
    """Lay out the header (stable extra context), then the FIM template around prefix and suffix."""
    header = header or Header[T]()
    kept, healed = heal_split(prefix) if heal else (prefix, "")
    pre = tokenize(header.text) + tokenize(kept)
    suf = tokenize(suffix)
    if order == "spm":
        body = [ids.prefix, ids.suffix, *suf, ids.middle, *pre]
    else:
        body = [ids.prefix, *pre, ids.suffix, *suf, ids.middle]
    return Prompt([*header.ids, *body], order, healed, len(header.ids))


def prompt_text(prompt: Prompt[str]) -> str:
    """A text-piece prompt as the string a remote engine receives."""
    return "".join(prompt.ids)


TEMPLATE_OVERHEAD_TOKENS = 4  # the FIM markers plus a possible BOS
