"""Command line: `serve` (the language server), `complete`, `explain`, `demo`, `doctor`,
`models` and `playground`.

Under `serve` on stdio nothing but LSP may reach stdout, so the real stdout is kept for the protocol
and file descriptor 1 is pointed at stderr: a stray print (ours, a library's, or llama.cpp's C code)
can then never corrupt the JSON-RPC stream.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_server import __version__, defaults
from lsp_server.settings import SCHEMA, Settings

log = logging.getLogger("lsp_server")


def setup_logging(verbose: int, log_file: str | None) -> None:
    """stderr (which editors show or keep) gets debug lines only with -v; a log file always gets
    them: who asks for a file wants the per-request detail ("why no suggestion") without flooding
    the editor's output panel."""
    level = logging.DEBUG if verbose >= 1 or log_file else logging.INFO
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose >= 1 else logging.INFO)
    handlers: list[logging.Handler] = [stderr]
    if log_file:
        Path(log_file).expanduser().parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(Path(log_file).expanduser(), encoding="utf-8"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(logging.WARNING)
    logging.getLogger("lsp_server").setLevel(level)
    if verbose >= 2:
        logging.getLogger("pygls").setLevel(logging.DEBUG)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from exc


def _model_args(p: argparse.ArgumentParser) -> None:
    """The settings that have a flag (the schema says which), then logging."""
    for f in SCHEMA:
        if f.flag:
            p.add_argument(f.flag, type=_ARG_TYPES.get(f.check.kind, str), choices=f.check.choices or None,
                           help=f.help)
    p.add_argument("--log-file", help="also write logs to this file")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug logs (-vv: protocol)")


# argparse types of the schema's JSON kinds (anything else is a string).
_ARG_TYPES: dict[str, Callable[[str], Any]] = {"integer": int, "number": float}


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The user's settings file, then CLI flags: the base the editor's settings override. Flags
    go through the same checks as editor settings (an invalid one is reported and ignored)."""
    from lsp_server.settings import cli_overrides, load_user_settings, merge

    s, problems = load_user_settings(Settings())
    s, flag_problems = merge(s, cli_overrides(args))
    for problem in [*problems, *flag_problems]:
        log.warning("%s", problem)
    return s


def _serve(args: argparse.Namespace) -> int:
    from lsp_server.malloc import return_large_blocks
    from lsp_server.protocol import transports
    from lsp_server.protocol.server import create_server

    return_large_blocks()  # document memory is bounded by what is live, not by what was freed
    settings = settings_from_args(args)
    options: dict[str, Any] = {"naive": args.naive}
    if args.loader is not None:
        options["loader"] = args.loader
    if args.tcp or args.ws or args.socket:
        def make() -> transports.Session:
            return create_server(settings, **options)

        try:
            if args.tcp:
                host, port = args.tcp
                transports.serve_tcp(make, host, port, token_file=args.token_file)
            elif args.ws:
                host, port = args.ws
                transports.serve_ws(make, host, port, token_file=args.token_file)
            else:
                transports.serve_unix(make, args.socket)
        except transports.ListenError as exc:
            print(f"starcoder-lsp: {exc}", file=sys.stderr)
            return 2
        return 0
    server = create_server(settings, **options)
    lsp_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything written to fd 1 from now on lands on stderr
    sys.stdout = sys.stderr
    server.start_io(sys.stdin.buffer, lsp_out)
    return 0


def _refuse_secret(path: Path, settings: Settings) -> bool:
    """The same rule as in the editor: a secrets file (or one `exclude` names) is never sent to
    the model. Relative patterns are taken from the current directory."""
    from lsp_server.context.secrets import SecretPolicy, off_message

    policy = SecretPolicy(settings.exclude, settings.gitignore, (str(Path.cwd()),))
    reason = policy.reason(path.resolve().as_uri(), str(path.resolve()))
    if reason is not None:
        print(f"starcoder-lsp: {off_message(path.name, reason)}", file=sys.stderr)
    return reason is not None


def _parse_location(text: str) -> tuple[Path, int, int]:
    """FILE:LINE:COL (1-based) -> (path, line0, col0)."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise SystemExit(f"expected FILE:LINE:COL (1-based), got {text!r}")
    return Path(parts[0]), max(0, int(parts[1]) - 1), max(0, int(parts[2]) - 1)


def _complete(args: argparse.Namespace) -> int:
    """Run the server's own pipeline in-process and print what it would suggest."""
    import json

    from lsp_server.context.window import editor_lines
    from lsp_server.service import Assistant, CompletionRequest

    path, line, col = _parse_location(args.location)
    settings = settings_from_args(args)
    if _refuse_secret(path, settings):
        return 2
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"starcoder-lsp: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    assistant = Assistant(settings)

    async def run() -> int:
        await assistant.load()
        if not assistant.ready:
            print(f"starcoder-lsp: {assistant.message}", file=sys.stderr)
            return 1
        lines = editor_lines(text.splitlines(keepends=True))
        req = CompletionRequest(lines, line, col, path.resolve().as_uri())
        s = await assistant.complete(req, whole=True)
        if args.json:
            out: dict[str, object] = {"text": s.text if s else "", "raw": s.raw if s else ""}
            if s and s.generation:
                g = s.generation
                out.update(prompt_tokens=s.prompt_tokens, evaluated=g.evaluated,
                           generated=g.generated, prompt_ms=round(g.prompt_ms, 1),
                           generate_ms=round(g.generate_ms, 1), stop_reason=g.stop_reason)
            print(json.dumps(out))
        else:
            print(s.text if s else "")
        return 0

    try:
        return asyncio.run(run())
    finally:
        assistant.shutdown()


def _explain(args: argparse.Namespace) -> int:
    """Explain FILE[:START-END] (1-based, inclusive) with the server's own pipeline, streaming."""
    from lsp_server.service import Assistant

    spec = args.location
    path_text, start, end = spec, None, None
    head, sep, rng = spec.rpartition(":")
    if sep and "-" in rng and all(p.isdigit() for p in rng.split("-", 1)):
        path_text = head
        a, b = rng.split("-", 1)
        start, end = int(a), int(b)
    path = Path(path_text)
    settings = settings_from_args(args)
    if _refuse_secret(path, settings):
        return 2
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"starcoder-lsp: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    lines = text.splitlines(keepends=True) or [""]
    first = max(0, (start or 1) - 1)
    last = min(len(lines), end or len(lines))
    if first >= last:
        print(f"starcoder-lsp: empty line range in {spec!r}", file=sys.stderr)
        return 2
    assistant = Assistant(settings)
    shown = 0

    def stream(partial: str) -> None:
        nonlocal shown
        if len(partial) > shown:
            sys.stdout.write(partial[shown:])
            sys.stdout.flush()
            shown = len(partial)

    async def run() -> int:
        await assistant.load()
        if not assistant.ready:
            print(f"starcoder-lsp: {assistant.message}", file=sys.stderr)
            return 1
        result = await assistant.explain(lines, first, last, path=path.name, language="",
                                         on_text=stream)
        stream(result.markdown)
        print(f"\n\n(first text after {result.first_text_s:.1f} s, done in {result.total_s:.1f} s)",
              file=sys.stderr)
        return 0

    try:
        return asyncio.run(run())
    finally:
        assistant.shutdown()


def build_parser() -> argparse.ArgumentParser:
    from lsp_server.doctor import add_parser as add_doctor_parser
    from lsp_server.models.commands import add_models_parser
    from lsp_server.playground import add_parser as add_playground_parser

    parser = argparse.ArgumentParser(
        prog="starcoder-lsp", description="Local AI code completion over LSP (llama.cpp + GGUF)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--stdio", action="store_true", help="talk LSP on stdin/stdout (default)")
    where.add_argument("--tcp", type=_host_port, metavar="HOST:PORT",
                       help="listen on TCP (loopback; clients send the token in initialize)")
    where.add_argument("--ws", type=_host_port, metavar="HOST:PORT",
                       help="listen on WebSocket (loopback; same token; browser pages only from "
                            "this listener's own origin)")
    where.add_argument("--socket", metavar="PATH",
                       help="listen on a Unix domain socket (mode 0600; no token needed)")
    serve.add_argument("--token-file", metavar="PATH",
                       help="where --tcp/--ws write their token (default: printed at start; "
                            f"or set {defaults.TOKEN_ENV} to choose the token)")
    # The latency benchmark's reference (plain PSM, no KV reuse, no caches): not for users.
    serve.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    _model_args(serve)
    serve.set_defaults(func=_serve)

    complete = sub.add_parser("complete", help="print the completion at FILE:LINE:COL (1-based)")
    complete.add_argument("location", metavar="FILE:LINE:COL")
    complete.add_argument("--json", action="store_true", help="print text and timings as JSON")
    _model_args(complete)
    complete.set_defaults(func=_complete)

    explain = sub.add_parser("explain", help="explain FILE or FILE:START-END (1-based lines)")
    explain.add_argument("location", metavar="FILE[:START-END]")
    _model_args(explain)
    explain.set_defaults(func=_explain)

    demo = sub.add_parser("demo", help="pull the demo model and show a real completion "
                                       "through the real server")
    _model_args(demo)
    demo.set_defaults(func=lambda a: __import__("lsp_server.demo", fromlist=["run"]).run(a))

    add_doctor_parser(sub, _model_args)
    add_models_parser(sub)
    add_playground_parser(sub, _model_args)
    return parser


def main(argv: list[str] | None = None, *, loader: Any = None) -> int:
    """`loader`: how `serve` loads a model (tests pass a slow or memory-capped one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.loader = loader
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    setup_logging(getattr(args, "verbose", 0) or 0, getattr(args, "log_file", None))
    return int(args.func(args) or 0)
