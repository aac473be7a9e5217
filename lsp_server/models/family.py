"""Which model family a GGUF belongs to: the FIM markers its vocabulary holds, or the FIM token
ids a converter wrote into its metadata."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from lsp_server import defaults
from lsp_server.models.gguf import GGUFInfo, read_gguf_info
from lsp_server.models.spec import CatalogError, Family

__all__ = ["detect_family", "pick_family", "vocab_token"]

# SentencePiece writes a leading space as U+2581; CodeLlama's markers exist in both spellings.
_SP_SPACE = "\u2581"


def vocab_token(vocab: Collection[str], marker: str) -> str | None:
    """The vocabulary spelling of `marker`, accepting SentencePiece's leading-space variant.

    CodeLlama GGUFs spell their markers `▁<PRE>` or `<PRE>` depending on the converter.
    """
    if not marker:
        return None
    if marker in vocab:
        return marker
    alt = marker[1:] if marker.startswith(_SP_SPACE) else _SP_SPACE + marker
    return alt if alt in vocab else None


def detect_family(path: Path, families: Mapping[str, Family] | Iterable[Family]) -> Family:
    """The family whose FIM markers are all single tokens of the GGUF at `path`.

    Reads only the GGUF header. Among matching families, one listing the file's
    `general.architecture` wins, then the one with most optional markers present, then the
    first in catalogue order. Raises `CatalogError` when no family matches.
    """
    fams = families.values() if isinstance(families, Mapping) else families
    path = Path(path)
    return pick_family(read_gguf_info(path), fams, path)


def pick_family(info: GGUFInfo, families: Iterable[Family], path: Path) -> Family:
    vocab = frozenset(info.tokens)
    best: tuple[tuple[int, int, int], Family] | None = None
    fim_families = [f for f in families if f.has_fim]
    for idx, fam in enumerate(fim_families):
        if not all(vocab_token(vocab, m) for m in fam.fim_markers):
            continue
        score = (
            int(info.architecture in fam.architectures),
            sum(1 for m in fam.optional_markers if vocab_token(vocab, m)),
            -idx,
        )
        if best is None or score > best[0]:
            best = (score, fam)
    if best is not None:
        return best[1]
    adhoc = _family_from_metadata(info)
    if adhoc is not None:
        return adhoc
    known = "; ".join(f"{f.name}: {' '.join(f.fim_markers)}" for f in fim_families)
    raise CatalogError(
        f"no FIM tokens in this model's vocabulary: {path} (architecture "
        f"{info.architecture}, {len(info.tokens)} tokens) has none of the fill-in-the-middle "
        f"markers of the known families ({known}); use a FIM code model such as "
        f"'{defaults.DEFAULT_MODEL}', or add a family with its markers to models.toml"
    )


def _family_from_metadata(info: GGUFInfo) -> Family | None:
    """A family from llama.cpp's `tokenizer.ggml.fim_*_token_id` keys, when a converter wrote them.

    Lets a FIM model of an unlisted family work without a models.toml entry.
    """
    pre = info.token_at("tokenizer.ggml.fim_pre_token_id")
    suf = info.token_at("tokenizer.ggml.fim_suf_token_id")
    mid = info.token_at("tokenizer.ggml.fim_mid_token_id")
    if not (pre and suf and mid):
        return None
    eos = info.token_at("tokenizer.ggml.eos_token_id")
    eot = info.token_at("tokenizer.ggml.eot_token_id")
    return Family(
        name=f"gguf:{info.architecture}",
        fim_prefix=pre,
        fim_suffix=suf,
        fim_middle=mid,
        fim_pad=info.token_at("tokenizer.ggml.fim_pad_token_id"),
        repo_name=info.token_at("tokenizer.ggml.fim_rep_token_id"),
        file_sep=info.token_at("tokenizer.ggml.fim_sep_token_id"),
        stop=tuple(dict.fromkeys(t for t in (eot, eos) if t)),
        architectures=(info.architecture,),
        description="detected from the GGUF's FIM token ids",
    )
