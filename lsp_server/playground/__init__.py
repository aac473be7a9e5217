"""`starcoder-lsp playground`: a page on 127.0.0.1 that is a real LSP client of the server.

The page (Monaco + monaco-languageclient, bundled from `playground-web/` into `static/` at build
time; nothing is fetched at run time) and the `--ws` transport share one port: the WebSocket
handshake admits only its own origin (`http://127.0.0.1:PORT`), so the page must come from that
port, and every other origin — another port, a `file:` or `data:` page, a rebinding domain — is
refused. The token reaches the page in the URL's fragment, which browsers never send to a server
and never show to another origin; `page.py` says how.
"""

from __future__ import annotations

from lsp_server.playground.run import add_parser, run

__all__ = ["add_parser", "run"]
