"""`starcoder-lsp models list|pull|path|verify`: the catalogue and the model cache from a shell.

Results go to stdout (so `$(starcoder-lsp models path NAME)` works); progress bars and errors go
to stderr; every error is one line and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lsp_server import defaults
from lsp_server.models import store
from lsp_server.models.catalog import Catalog, load_catalog, user_catalog_path
from lsp_server.models.spec import CatalogError, ModelSpec

__all__ = ["add_models_parser", "run_models"]

_EXIT_ERROR = 1
_EXIT_INTERRUPTED = 130


def _out(text: object = "") -> None:
    """The `models` commands' output (CLI only: the server never calls this module's commands)."""
    sys.stdout.write(f"{text}\n")


def add_models_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `models` and its sub-commands; `args.func` is set to `run_models`."""
    models = subparsers.add_parser(
        "models",
        help="list, download and check models",
        description="The model catalogue (models.toml) and the local model cache.",
    )
    models.set_defaults(func=run_models)
    sub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, *, with_name: bool) -> None:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if with_name:
            p.add_argument("name", metavar="NAME", help="a models.toml name or a .gguf path")
        p.add_argument(
            "--models-file",
            metavar="PATH",
            type=Path,
            help="an extra models.toml, read after the bundled and user catalogues",
        )

    command("list", "show the catalogue with sources, sizes and local status", with_name=False)
    command("pull", "download a model (if needed) and verify its sha256", with_name=True)
    command("path", "print where a model's file is (or will be)", with_name=True)
    command("verify", "check a downloaded model's sha256", with_name=True)
    sub.choices["verify"].add_argument(
        "--accept-new", action="store_true",
        help="trust a Hub file that differs from the one first pulled (kept aside by `pull`)")


def run_models(args: argparse.Namespace) -> int:
    """Run a `models` sub-command; returns the process exit status."""
    action = getattr(args, "models_command", None)
    if action not in ("list", "pull", "path", "verify"):
        _error(f"unknown models command {action!r}; use list, pull, path or verify")
        return _EXIT_ERROR
    try:
        catalog = load_catalog(models_file=getattr(args, "models_file", None))
        if action == "list":
            return _list(catalog)
        spec = catalog.resolve(args.name)
        if action == "pull":
            return _pull(spec)
        if action == "path":
            return _path(spec)
        return _verify(spec, accept_new=bool(getattr(args, "accept_new", False)))
    except (CatalogError, store.PullError) as exc:
        _error(str(exc))
        return _EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted (nothing partial was kept)")
        return _EXIT_INTERRUPTED


def _list(catalog: Catalog) -> int:
    rows = [("NAME", "FAMILY", "PARAMS", "SIZE", "SOURCE", "LOCAL")]
    for spec in catalog.models.values():
        name = spec.name + (" *" if spec.name == defaults.DEFAULT_MODEL else "")
        rows.append(
            (
                name,
                spec.family.name + ("" if spec.family.has_fim else " (no FIM)"),
                spec.params or "?",
                _size(spec.size_bytes),
                spec.source.describe(),
                _status(spec),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        _out("  ".join([*cells, row[-1]]).rstrip())
    _out(f"\n* default model. Cache: {store.model_dir()}")
    _out("Catalogue files: " + ", ".join(str(p) for p in catalog.files))
    user = user_catalog_path()
    if user not in catalog.files:
        _out(f"Your own entries go in {user} (absent)")
    return 0


def _status(spec: ModelSpec) -> str:
    if store.is_verified(spec):
        return "verified"
    if store.is_present(spec):
        return "present (unverified)"
    return "missing" if spec.source.kind == "path" else "-"


def pull_with_progress(spec: ModelSpec) -> Path:
    """`store.ensure` with a progress bar on stderr (shared by `models pull` and `demo`)."""
    if spec.source.kind != "path" and not store.is_present(spec):
        size = f" ({_size(spec.size_bytes)})" if spec.size_bytes else ""
        _info(f"pulling {spec.name}{size} from {spec.source.describe()}")
    with _ProgressBar() as bar:
        return store.ensure(spec, bar)


def _pull(spec: ModelSpec) -> int:
    _out(pull_with_progress(spec))
    return 0


def _path(spec: ModelSpec) -> int:
    path = store.local_path(spec)
    _out(path)
    if not path.is_file():
        hint = (
            "" if spec.source.kind == "path" else f"; run `starcoder-lsp models pull {spec.name}`"
        )
        _error(f"{spec.name} is not downloaded yet{hint}")
        return _EXIT_ERROR
    return 0


def _verify(spec: ModelSpec, *, accept_new: bool = False) -> int:
    with _ProgressBar() as bar:
        path = store.verify(spec, bar, accept_new=accept_new)
    _out(f"{'ACCEPTED' if accept_new else 'OK'} {spec.name} {path}")
    return 0


class _ProgressBar:
    """A tqdm bar on stderr driven by `store.Progress` callbacks (one bar per stage)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._stage: str | None = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def __call__(self, done: int, total: int | None, stage: str) -> None:
        from tqdm import tqdm

        if stage != self._stage or self._bar is None:
            self._close()
            self._stage = stage
            self._bar = tqdm(
                total=total,
                desc=stage,
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=False,
            )
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _size(n: int | None) -> str:
    if not n:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _info(message: str) -> None:
    sys.stderr.write(f"{message}\n")


def _error(message: str) -> None:
    sys.stderr.write(f"starcoder-lsp: error: {message}\n")
