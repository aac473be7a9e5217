"""The playground's Python side, fast (no model, except the tiny StarCoder for the listener): only
the bundled files are served, only to this loopback origin; the token is only in the launcher
and the printed address; 127.0.0.1 only; Ctrl+C stops it and removes what it wrote."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lsp_server.playground.page import (
    CSP,
    MissingBundle,
    Page,
    bundled_files,
    page_url,
    write_launcher,
)
from lsp_server.protocol import auth
from tests.netclient import WsClient
from tests.playground.conftest import Playground

PORT = 43210
HOST = f"127.0.0.1:{PORT}"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><p>page</p>")
    (root / "main.js").write_text("console.log(1)")
    (root / "sub" / "a.css").write_text("p{}")
    (tmp_path / "secret.txt").write_text("not for the page")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    return root


def _page(site: Path) -> Page:
    return Page(PORT, bundled_files(site), {"models": [], "settings": {"model": "m"}})


def test_only_the_bundled_files_are_served(site: Path) -> None:
    page = _page(site)
    ok = page.reply("GET", "/", HOST, [])
    assert ok.status == 200 and b"page" in ok.body
    assert dict(ok.headers)["Content-Type"] == "text/html"
    assert page.reply("GET", "/main.js?v=1", HOST, []).body == b"console.log(1)"
    assert dict(page.reply("GET", "/sub/a.css", HOST, []).headers)["Content-Type"] == "text/css"
    assert json.loads(page.reply("GET", "/config.json", HOST, []).body)["settings"] == {"model": "m"}
    for target in ("/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "//etc/passwd",
                   "/link.txt", "/sub", "/static/index.html", "/index.html/", "/./main.js",
                   "/%2fetc%2fpasswd", "/main.js%00.html", "/MAIN.JS"):
        assert page.reply("GET", target, HOST, []).status == 404, target
    assert page.reply("POST", "/", HOST, []).status == 405


def test_a_file_added_after_start_is_not_served(site: Path) -> None:
    page = _page(site)
    (site / "late.js").write_text("late")
    assert page.reply("GET", "/late.js", HOST, []).status == 404


def test_only_this_loopback_origin(site: Path) -> None:
    page = _page(site)
    for host in (f"localhost:{PORT}", f"[::1]:{PORT}", "127.0.0.1"):
        assert page.reply("GET", "/", host, []).status == 200, host
    for host in ("evil.example", f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", None):
        assert page.reply("GET", "/config.json", host, []).status == 403, host
    assert page.reply("GET", "/", HOST, [f"http://127.0.0.1:{PORT}"]).status == 200
    for origin in ("https://evil.example", "null", f"http://127.0.0.1:{PORT + 1}", "file://"):
        assert page.reply("GET", "/config.json", HOST, [origin]).status == 403, origin


def test_every_answer_is_locked_to_the_page(site: Path) -> None:
    page = _page(site)
    for target in ("/", "/nope"):
        headers = dict(page.reply("GET", target, HOST, []).headers)
        assert headers["Content-Security-Policy"] == CSP and headers["X-Frame-Options"] == "DENY"
        assert not any(k.lower().startswith("access-control-") for k in headers)  # no CORS
    assert "connect-src 'self'" in CSP and "frame-ancestors 'none'" in CSP


def test_a_missing_bundle_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(MissingBundle, match="make install"):
        bundled_files(tmp_path)


def test_the_launcher_is_private_and_replaces_a_planted_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    launcher = tmp_path / "run" / "playground-1.html"
    launcher.parent.mkdir()
    launcher.symlink_to(target)
    url = page_url(1, "tok</script>en")
    write_launcher(launcher, url)
    assert target.read_text() == "keep" and not launcher.is_symlink()
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o600
    text = launcher.read_text()
    assert "http://127.0.0.1:1/#token=tok" in text and "</script>en" not in text


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the listening sockets on `port` (/proc/net/tcp{,6}; state 0A)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            addr, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(addr)
    return found


def test_the_playground_listens_on_loopback_hands_out_the_token_and_stops_on_ctrl_c(
        tiny_starcoder: Path, tmp_path: Path) -> None:
    pg = Playground(tiny_starcoder, tmp_path, "--threads", "1", open_browser=True)
    try:
        pg.wait_listening()
        assert _listening_addresses(pg.port) == {"0100007F"}  # 127.0.0.1, nothing else
        # The browser was given the launcher (the token is not on its command line) ...
        opened = (tmp_path / "opened").read_text()
        assert pg.token not in opened and opened.startswith("file://")
        launcher = Path(opened.removeprefix("file://"))
        assert stat.S_IMODE(launcher.stat().st_mode) == 0o600
        assert pg.url in launcher.read_text()
        token_file = pg.runtime / "starcoder-lsp" / f"ws-{pg.port}.token"
        assert token_file.read_text().strip() == pg.token
        # ... and no answer carries the token.
        for target in ("/", "/index.html", "/main.js", "/config.json"):
            status, headers, body = _get(pg.origin + target)
            assert status == 200 and pg.token.encode() not in body, target
            assert "Access-Control-Allow-Origin" not in headers
        assert _get(pg.origin + "/config.json", Origin="https://evil.example")[0] == 403
        # The socket: the token opens a session, another origin or no token does not.
        from websockets.exceptions import InvalidStatus

        with pytest.raises(InvalidStatus):
            WsClient(pg.port, origin=f"http://127.0.0.1:{pg.port + 1}")
        c = WsClient(pg.port)
        answer = c.initialize({})
        assert answer["error"]["code"] == auth.UNAUTHORIZED and c.wait_eof()
        c = WsClient(pg.port, origin=pg.origin)
        assert "result" in c.initialize({"token": pg.token})
        c.close()
        assert pg.interrupt() == 0, pg.stderr()
        assert not launcher.exists() and not token_file.exists()
    finally:
        pg.stop()
