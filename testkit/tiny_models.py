"""Tiny, deterministic GGUF models for tests.

llama.cpp loads these through its real loader and real tokenizer path, so tests exercise the
StarCoder token ids, prompt layout and KV-cache handling without a multi-GB download. The
weights are small random f32 values (fixed seed), so completions are noise: use these for the
protocol and token plumbing, and the real Qwen model for anything about what the text says.

Run as ``python -m testkit.tiny_models OUT.gguf [--arch starcoder|starcoder2|no-fim]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import gguf
import numpy as np

__all__ = [
    "SMOLLM_SPECIAL_TOKENS",
    "STARCODER2_SPECIAL_TOKENS",
    "STARCODER_SPECIAL_TOKENS",
    "main",
    "write_no_fim_model",
    "write_tiny_starcoder",
    "write_tiny_starcoder2",
]

# StarCoder / StarCoderBase special tokens, at their real ids 0..18.
STARCODER_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<empty_output>",
    "<commit_before>",
    "<commit_msg>",
    "<commit_after>",
    "<reponame>",
)

# StarCoder2 special tokens in the order of its special_tokens_map (ids 0..33).
STARCODER2_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<repo_name>",
    "<file_sep>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
    "<code_to_intermediate>",
    "<intermediate_to_code>",
    "<pr>",
    "<pr_status>",
    "<pr_is_merged>",
    "<pr_base>",
    "<pr_file>",
    "<pr_base_code>",
    "<pr_diff>",
    "<pr_diff_hunk>",
    "<pr_comment>",
    "<pr_event_id>",
    "<pr_review>",
    "<pr_review_state>",
    "<pr_review_comment>",
    "<pr_in_reply_to_review_id>",
    "<pr_in_reply_to_comment_id>",
    "<pr_diff_hunk_comment_line>",
)

# SmolLM2's special tokens (ids 0..16): repo/file markers but no FIM tokens at all.
SMOLLM_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<repo_name>",
    "<reponame>",
    "<file_sep>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
)

# A handful of BPE merges (GPT-2 byte-unicode form) so the merge path runs: "ĠĠĠĠ" (4-space
# indent), "def", "Ġreturn", "Ġin" ... Order is rank; every merged token is added to the vocab.
_MERGES: tuple[tuple[str, str], ...] = (
    ("Ġ", "Ġ"),
    ("ĠĠ", "ĠĠ"),
    ("d", "e"),
    ("de", "f"),
    ("r", "e"),
    ("t", "u"),
    ("r", "n"),
    ("re", "tu"),
    ("retu", "rn"),
    ("Ġ", "return"),
    ("Ġ", "t"),
    ("i", "n"),
    ("Ġ", "in"),
    ("s", "e"),
    ("l", "f"),
    ("se", "lf"),
)

Arch = Literal["starcoder", "starcoder2", "llama"]


@dataclass(frozen=True)
class _Shape:
    """Hyper-parameters: small enough for a few MB and sub-second loads."""

    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 1
    n_ff: int = 256
    n_layer: int = 2

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_embd_kv(self) -> int:
        return self.head_dim * self.n_head_kv


@cache
def _bytes_to_unicode() -> tuple[str, ...]:
    """GPT-2's byte -> printable-unicode table, indexed by byte value."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return tuple(table[b] for b in range(256))


def _vocab(specials: Sequence[str]) -> tuple[list[str], list[gguf.TokenType], list[str]]:
    """Special tokens (CONTROL) first, then the 256 byte tokens, then merged tokens."""
    tokens = list(specials)
    types = [gguf.TokenType.CONTROL] * len(specials)
    tokens += _bytes_to_unicode()
    types += [gguf.TokenType.NORMAL] * 256
    seen = set(tokens)
    merges: list[str] = []
    for left, right in _MERGES:
        assert left in seen and right in seen, (left, right)
        merges.append(f"{left} {right}")
        if left + right not in seen:
            tokens.append(left + right)
            types.append(gguf.TokenType.NORMAL)
            seen.add(left + right)
    return tokens, types, merges


def _write(
    path: Path,
    *,
    arch: Arch,
    specials: Sequence[str],
    tokenizer_pre: str,
    shape: _Shape,
    n_ctx: int,
    seed: int,
    name: str,
) -> Path:
    """Write one model; written to a temp name and renamed so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocab(specials)
    n_vocab = len(tokens)
    e, kv, ff = shape.n_embd, shape.n_embd_kv, shape.n_ff

    def rand(*dims: int) -> np.ndarray:
        # numpy shape is the reverse of ggml's ne: (rows, cols) == ggml {cols, rows}.
        return (rng.standard_normal(dims) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    tensors: list[tuple[str, np.ndarray]] = [("token_embd.weight", rand(n_vocab, e))]
    if arch == "starcoder":
        tensors.append(("position_embd.weight", rand(n_ctx, e)))
    for i in range(shape.n_layer):
        blk = f"blk.{i}"
        tensors.append((f"{blk}.attn_norm.weight", ones(e)))
        if arch != "llama":
            tensors.append((f"{blk}.attn_norm.bias", rand(e)))
        if arch == "starcoder":
            tensors += [
                (f"{blk}.attn_qkv.weight", rand(e + 2 * kv, e)),
                (f"{blk}.attn_qkv.bias", rand(e + 2 * kv)),
            ]
        else:
            tensors += [
                (f"{blk}.attn_q.weight", rand(e, e)),
                (f"{blk}.attn_k.weight", rand(kv, e)),
                (f"{blk}.attn_v.weight", rand(kv, e)),
            ]
            if arch == "starcoder2":
                tensors += [
                    (f"{blk}.attn_q.bias", rand(e)),
                    (f"{blk}.attn_k.bias", rand(kv)),
                    (f"{blk}.attn_v.bias", rand(kv)),
                ]
        tensors.append((f"{blk}.attn_output.weight", rand(e, e)))
        if arch != "llama":
            tensors.append((f"{blk}.attn_output.bias", rand(e)))
        tensors.append((f"{blk}.ffn_norm.weight", ones(e)))
        if arch == "llama":
            tensors += [
                (f"{blk}.ffn_gate.weight", rand(ff, e)),
                (f"{blk}.ffn_up.weight", rand(ff, e)),
                (f"{blk}.ffn_down.weight", rand(e, ff)),
            ]
        else:
            tensors += [
                (f"{blk}.ffn_norm.bias", rand(e)),
                (f"{blk}.ffn_up.weight", rand(ff, e)),
                (f"{blk}.ffn_up.bias", rand(ff)),
                (f"{blk}.ffn_down.weight", rand(e, ff)),
                (f"{blk}.ffn_down.bias", rand(e)),
            ]
    tensors.append(("output_norm.weight", ones(e)))
    if arch != "llama":
        tensors.append(("output_norm.bias", rand(e)))
    tensors.append(("output.weight", rand(n_vocab, e)))

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_gguf(tmp, arch, shape, n_ctx, name, tokenizer_pre, tokens, types, merges, tensors)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_gguf(
    out: Path,
    arch: Arch,
    shape: _Shape,
    n_ctx: int,
    name: str,
    tokenizer_pre: str,
    tokens: Sequence[str],
    types: Sequence[gguf.TokenType],
    merges: Sequence[str],
    tensors: Sequence[tuple[str, np.ndarray]],
) -> None:
    """Keys first, then tensors, in the layout llama.cpp's loader expects."""
    e = shape.n_embd
    writer = gguf.GGUFWriter(str(out), arch)
    try:
        writer.add_name(name)
        writer.add_context_length(n_ctx)
        writer.add_embedding_length(e)
        writer.add_feed_forward_length(shape.n_ff)
        writer.add_block_count(shape.n_layer)
        writer.add_head_count(shape.n_head)
        writer.add_head_count_kv(shape.n_head_kv)
        if arch == "llama":
            writer.add_layer_norm_rms_eps(1e-5)
        else:
            writer.add_layer_norm_eps(1e-5)
        if arch != "starcoder":
            writer.add_rope_freq_base(100000.0)
            writer.add_rope_dimension_count(shape.head_dim)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)

        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(tokenizer_pre)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(0)
        writer.add_eos_token_id(0)
        writer.add_unk_token_id(0)
        writer.add_add_bos_token(False)

        for tensor_name, data in tensors:
            writer.add_tensor(tensor_name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def write_tiny_starcoder(path: Path, *, n_ctx: int = 8192, seed: int = 0) -> Path:
    """Architecture ``starcoder`` (learned positions, multi-query attention) with StarCoder's
    real special tokens at ids 0-18: ``<fim_prefix>`` 1, ``<fim_middle>`` 2, ``<fim_suffix>`` 3,
    ``<fim_pad>`` 4, ``<reponame>`` 18; bos = eos = 0 ``<|endoftext|>``."""
    return _write(
        path,
        arch="starcoder",
        specials=STARCODER_SPECIAL_TOKENS,
        tokenizer_pre="starcoder",
        shape=_Shape(n_head_kv=1),
        n_ctx=n_ctx,
        seed=seed,
        name="tiny-starcoder",
    )


def write_tiny_starcoder2(path: Path, *, n_ctx: int = 8192, seed: int = 0) -> Path:
    """Architecture ``starcoder2`` (RoPE, grouped-query attention) with StarCoder2's special
    tokens: FIM at ids 1-4 as in StarCoder, ``<repo_name>`` 5, ``<file_sep>`` 6."""
    return _write(
        path,
        arch="starcoder2",
        specials=STARCODER2_SPECIAL_TOKENS,
        tokenizer_pre="starcoder",
        shape=_Shape(n_head_kv=2),
        n_ctx=n_ctx,
        seed=seed,
        name="tiny-starcoder2",
    )


def write_no_fim_model(
    path: Path,
    *,
    arch: Literal["llama", "starcoder"] = "llama",
    n_ctx: int = 8192,
    seed: int = 0,
) -> Path:
    """A model whose vocabulary has no FIM tokens, for the "no FIM tokens" error path.

    The same file covers "FIM markers are not single tokens": ``"<fim_prefix>"`` etc. tokenize
    to several byte tokens, and llama.cpp reports no FIM ids. ``arch="llama"`` mirrors SmolLM2
    (its special tokens, ``smollm`` pre-tokenizer); ``arch="starcoder"`` is the tiny StarCoder
    with the FIM tokens left out of its vocabulary.
    """
    if arch == "llama":
        return _write(
            path,
            arch="llama",
            specials=SMOLLM_SPECIAL_TOKENS,
            tokenizer_pre="smollm",
            shape=_Shape(n_head_kv=2),
            n_ctx=n_ctx,
            seed=seed,
            name="tiny-no-fim-llama",
        )
    fim = {"<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"}
    return _write(
        path,
        arch="starcoder",
        specials=[t for t in STARCODER_SPECIAL_TOKENS if t not in fim],
        tokenizer_pre="starcoder",
        shape=_Shape(n_head_kv=1),
        n_ctx=n_ctx,
        seed=seed,
        name="tiny-no-fim-starcoder",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: write one tiny model and print its path and size."""
    parser = argparse.ArgumentParser(prog="python -m testkit.tiny_models", description=__doc__)
    parser.add_argument("out", type=Path, help="GGUF file to write")
    parser.add_argument(
        "--arch",
        choices=["starcoder", "starcoder2", "no-fim", "no-fim-starcoder"],
        default="starcoder",
    )
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.arch == "starcoder":
        out = write_tiny_starcoder(args.out, n_ctx=args.n_ctx, seed=args.seed)
    elif args.arch == "starcoder2":
        out = write_tiny_starcoder2(args.out, n_ctx=args.n_ctx, seed=args.seed)
    else:
        fim_arch: Literal["llama", "starcoder"] = (
            "starcoder" if args.arch == "no-fim-starcoder" else "llama"
        )
        out = write_no_fim_model(args.out, arch=fim_arch, n_ctx=args.n_ctx, seed=args.seed)
    print(f"{out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
