"""Run the CLI with a Python audit hook that refuses (and records) every network operation.

    python -m tests.no_network serve --model X      # then drive it as usual

Events are appended to the file named by $STARCODER_LSP_NET_AUDIT; the operation then fails, as
it would on a machine without a network. Local IPC (asyncio's socketpair, AF_UNIX) is allowed.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

AUDIT_FILE_ENV = "STARCODER_LSP_NET_AUDIT"
NETWORK_EVENTS = frozenset({
    "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.sendto", "socket.bind", "http.client.connect", "urllib.Request", "ftplib.connect",
    "smtplib.connect", "webbrowser.open",
})


def _hook(event: str, args: tuple[Any, ...]) -> None:
    inet = event == "socket.__new__" and len(args) > 1 and args[1] in (socket.AF_INET,
                                                                       socket.AF_INET6)
    if event in NETWORK_EVENTS or inet:
        with open(os.environ[AUDIT_FILE_ENV], "a", encoding="utf-8") as fh:
            fh.write(f"{event} {args!r}"[:500] + "\n")
        raise PermissionError(f"network access refused in tests: {event}")


def main() -> int:
    sys.addaudithook(_hook)
    from lsp_server.cli import main as cli_main

    return cli_main(sys.argv[1:]) or 0


if __name__ == "__main__":
    raise SystemExit(main())
