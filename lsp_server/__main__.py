"""`python -m lsp_server` is the same program as the `starcoder-lsp` console script."""

from __future__ import annotations

from lsp_server.cli import main

raise SystemExit(main())
