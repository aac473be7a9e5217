"""`starcoder-lsp playground [--port N] [--no-open]`: serve the page and the `--ws` transport on
one 127.0.0.1 port until Ctrl+C (or SIGTERM), then remove the token file and the launcher."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_server import defaults
from lsp_server.playground.page import MissingBundle, Page, bundled_files, page_url, write_launcher
from lsp_server.settings import Settings, to_camel

HOST = "127.0.0.1"  # never another address: the page and its socket are for this machine only


def add_parser(sub: Any, model_args: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("playground", help="try models and settings in a local browser page "
                                          "(127.0.0.1 only)")
    p.add_argument("--port", type=int, default=defaults.PLAYGROUND_PORT,
                   help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-open", action="store_true", help="do not open a browser; print the address")
    model_args(p)
    p.set_defaults(func=run)


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page's form starts from: the catalogue's models and the settings in effect."""
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog

    models: list[dict[str, Any]] = []
    try:
        catalog = load_catalog(models_file=settings.models_file)
        models = [{"name": spec.name, "local": store.is_present(spec),
                   "description": f"{spec.family.name} {spec.params or ''}".strip()}
                  for spec in catalog.models.values()]
    except Exception as exc:  # a broken catalogue: the page still works with the current model
        sys.stderr.write(f"starcoder-lsp: the catalogue did not load: {exc}\n")
    camel = to_camel(settings)
    chosen = {k: camel[k] for k in defaults.PLAYGROUND_SETTINGS if camel.get(k) is not None}
    return {"models": models, "settings": chosen}


def run(args: argparse.Namespace) -> int:
    from lsp_server.cli import settings_from_args
    from lsp_server.protocol import transports
    from lsp_server.protocol.auth import token_path
    from lsp_server.protocol.server import create_server

    settings = settings_from_args(args)
    try:
        files = bundled_files()
    except MissingBundle as exc:
        sys.stderr.write(f"starcoder-lsp: {exc}\n")
        return 2
    config = page_config(settings)
    options: dict[str, Any] = {}
    if getattr(args, "loader", None) is not None:
        options["loader"] = args.loader
    launchers: list[Path] = []

    def make() -> transports.Session:
        return create_server(settings, **options)

    def page(port: int, token: str) -> Callable[[Any, Any], Any]:
        url = page_url(port, token)
        sys.stderr.write(f"starcoder-lsp: playground at {url}\n  (Ctrl+C stops it)\n")
        if not args.no_open:
            launcher = token_path("playground", port).with_suffix(".html")
            write_launcher(launcher, url)
            launchers.append(launcher)
            webbrowser.open(launcher.as_uri())
        return Page(port, files, config).respond

    try:
        transports.serve_ws(make, HOST, args.port, page=page)
    except transports.ListenError as exc:
        sys.stderr.write(f"starcoder-lsp: {exc}\n")
        return 2
    finally:
        for launcher in launchers:
            launcher.unlink(missing_ok=True)
    return 0
