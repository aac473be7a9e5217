"""The page's HTTP side: the bundled files only, the launcher that hands the page its token.

- Only the files found in `static/` at start are served, looked up by exact name in a table:
  no path from a request ever reaches the file system, so `..`, `%2e%2e`, `//etc/passwd` or a
  symlink added later cannot name another file.
- A request whose `Host` is not this loopback listener (DNS rebinding) or that carries another
  origin's `Origin` gets 403 (the same rule as the WebSocket handshake, `protocol.auth`); no
  response carries CORS headers, so another origin cannot read one.
- The token is never in a response. The browser gets it in the URL's fragment (`#token=…`); the
  page moves it to sessionStorage (its own origin only) and removes it from the address bar. So
  that the token is not on the browser's command line either (other local users can read that),
  the browser is opened on a launcher: a 0600 file beside the token file that redirects to the URL.
"""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsp_server.protocol.auth import handshake_refusal

STATIC = Path(__file__).with_name("static")

# The page runs only its own bundle: no inline script, no other origin, never framed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "font-src 'self' data:; img-src 'self' data:; worker-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".ttf": "font/ttf", ".json": "application/json"}


class MissingBundle(Exception):
    """The page was not built (a checkout without `make install`)."""


def bundled_files(root: Path = STATIC) -> dict[str, Path]:
    """URL path -> file, for every regular file under `root` (found once, at start)."""
    if not (root / "index.html").is_file():
        raise MissingBundle(f"the playground page is not built ({root / 'index.html'} is missing): "
                            "run `make install` (it bundles playground-web/ with esbuild)")
    files = {"/" + p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
             if p.is_file() and not p.is_symlink()}
    files["/"] = files["/index.html"]
    return files


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Page:
    """Answers the plain HTTP requests of the playground's port."""

    def __init__(self, port: int, files: Mapping[str, Path], config: Mapping[str, Any]) -> None:
        self.port = port
        self._bodies: dict[str, tuple[str, bytes]] = {
            path: (_content_type(file), file.read_bytes()) for path, file in files.items()}
        self._bodies["/config.json"] = ("application/json", json.dumps(config).encode())

    def reply(self, method: str, target: str, host: str | None, origins: list[str]) -> Reply:
        refusal = handshake_refusal(host, origins, self.port)
        if refusal is not None:
            return _text(403, refusal)
        if method != "GET":
            return _text(405, "only GET")
        found = self._bodies.get(target.split("?", 1)[0].split("#", 1)[0])
        if found is None:
            return _text(404, "not found")
        kind, body = found
        return Reply(200, (("Content-Type", kind), *_SECURITY_HEADERS), body)

    def respond(self, connection: Any, request: Any) -> Any:
        """The websockets `process_request` answer (the server only takes GET requests)."""
        r = self.reply("GET", request.path, request.headers.get("Host"),
                       request.headers.get_all("Origin"))
        from websockets.datastructures import Headers

        response = connection.respond(r.status, "")  # the status line, Date, Server, Connection
        headers = Headers([(k, v) for k, v in response.headers.raw_items()
                           if k.lower() not in ("content-type", "content-length")])
        for name, value in (*r.headers, ("Content-Length", str(len(r.body)))):
            headers[name] = value
        return dataclasses.replace(response, headers=headers, body=r.body)


_SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"),
                     ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                     ("Cross-Origin-Resource-Policy", "same-origin"), ("Cache-Control", "no-store"))


def _text(status: int, text: str) -> Reply:
    return Reply(status, (("Content-Type", "text/plain; charset=utf-8"), *_SECURITY_HEADERS),
                 f"{text}\n".encode())


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def page_url(port: int, token: str) -> str:
    return f"http://127.0.0.1:{port}/#token={token}"


def write_launcher(path: Path, url: str) -> None:
    """A new 0600 HTML file that sends the browser to `url` (never through a planted symlink)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    quoted = json.dumps(url).replace("<", "\\u003c")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("<!doctype html><meta charset=utf-8><title>starcoder-lsp playground</title>"
                 f"<script>location.replace({quoted})</script>"
                 "<p>Opening the playground… (JavaScript is needed)</p>\n")
