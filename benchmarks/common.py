"""What every benchmark shares besides the LSP driver: the model, the results files, languages.

Benchmarks must measure what an editor gets, so they talk LSP to `python -m lsp_server serve` as a
subprocess through `lsp_server.driver` (never call the pipeline in-process) and apply the
returned item the way an editor applies it (`lsp_server.driver.editor.apply_inline`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lsp_server import defaults

RESULTS_DIR = Path(__file__).resolve().parent / "results"

LANGUAGE_IDS = {
    ".py": "python", ".ts": "typescript", ".tsx": "typescriptreact", ".js": "javascript",
    ".jsx": "javascriptreact", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c",
    ".cpp": "cpp", ".rb": "ruby", ".kt": "kotlin", ".cs": "csharp",
}


def language_of(path: str) -> str:
    """The LSP languageId a VS Code-like client would send for `path`."""
    return LANGUAGE_IDS.get(Path(path).suffix.lower(), "plaintext")


def resolve_model(name: str | None) -> tuple[str, Path]:
    """(catalogue name or path, verified local GGUF); pulls explicitly because the server won't."""
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog

    spec = load_catalog().resolve(name or defaults.DEFAULT_MODEL)
    return (name or spec.name), store.ensure(spec)


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write_results(name: str, stamp: str, data: Any) -> Path:
    """Write a benchmark's JSON to benchmarks/results/NAME-STAMP.json and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}-{stamp}.json"
    out.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return out
