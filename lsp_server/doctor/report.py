"""The doctor's report: text for people, JSON for tools, and the `doctor` subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from typing import Any

from lsp_server import defaults
from lsp_server.doctor.checks import (
    EXIT_HEALTHY,
    EXIT_MUST_FIX,
    EXIT_WARNINGS,
    FIX,
    Facts,
    Finding,
    assess,
    estimates,
    exit_status,
    gib,
    size_text,
)
from lsp_server.doctor.probe import collect
from lsp_server.settings import cli_overrides, user_settings_path


def render(facts: Facts, findings: list[Finding]) -> str:
    lines: list[str] = [f"starcoder-lsp doctor ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})", ""]

    def row(label: str, value: object) -> None:
        lines.append(f"  {label:<22} {value}")

    lines.append("Versions")
    row("Python", facts.python)
    for name, version in facts.versions.items():
        pin = f" (tested: {facts.llama_pin})" if name == "llama-cpp-python" and facts.llama_pin else ""
        row(name, (version or "not installed") + pin)
    b = facts.build
    lines += ["", "llama.cpp build"]
    if b.import_error is not None:
        row("import", f"FAILED: {b.import_error}")
    else:
        row("GPU offload", f"yes ({b.max_devices} devices max)" if b.gpu_offload
            else "no (CPU-only build)")
        row("features", " ".join(b.features) or "?")
        row("system info", b.system_info)
    row("GPUs seen", ", ".join(facts.gpu_hardware) or "none")
    lines += ["", "Machine"]
    row("OS", f"{platform.system()} {platform.release()} {platform.machine()}")
    row("CPU cores", f"{facts.cores} (threads in use: {facts.settings.threads})")
    row("free RAM", f"{gib(facts.free_ram)} of {gib(facts.total_ram)}")
    if facts.busy_cores is not None:
        row("busy (others)", f"{facts.busy_cores:.1f} cores, just before the speed test")

    est = estimates(facts)
    lines += ["", f"Models (cache: {facts.cache_dir or '?'})"]
    if facts.catalog_error:
        lines.append(f"  catalogue error: {facts.catalog_error}")
    table = [("", "NAME", "PARAMS", "SIZE", "STATE", "PAUSE→SUGGESTION", "NEW FILE")]
    for m in facts.models:
        e = est.get(m.name)
        state = m.state + ("" if m.fim else " (no FIM)")
        if m.problem:
            state += " (FAILED check)"
        table.append(("*" if m.configured else "", m.name, m.params or "?", size_text(m.size_bytes),
                      state, f"~{e.pause_s:.2f} s" if e else "–", f"~{e.new_file_s:.1f} s" if e else "–"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    lines.append("  * the configured model. Latencies are estimates: the speed test's figures scaled "
                 "by file size.")
    lines.append(f"    PAUSE: {defaults.DOCTOR_PAUSE_TYPED_TOKENS} typed tokens + "
                 f"{defaults.FRESH_HEAD_TOKENS + 1} re-evaluated + a {defaults.DOCTOR_LINE_TOKENS}-"
                 f"token line; NEW FILE: the {defaults.QUICK_WINDOW_TOKENS}-token quick window + "
                 "a line.")

    lines += ["", "Speed test"]
    sp = facts.speed
    if sp is not None:
        where = f"{sp.gpu_layers} GPU layers" if sp.gpu_layers else "CPU"
        row("model", f"{sp.model} ({size_text(sp.size_bytes)}, {sp.threads} threads, {where}, "
                     f"loaded in {sp.load_s:.1f} s)")
        row("prompt", f"{sp.prompt_tps:.0f} tokens/s ({sp.prompt_tokens} tokens in {sp.prompt_s:.2f} s)")
        row("decode", f"{sp.decode_tps:.1f} tokens/s ({sp.decode_tokens} tokens in {sp.decode_s:.2f} s, "
                      f"{1000 / max(sp.decode_tps, 1e-9):.0f} ms/token)")
    elif facts.speed_error:
        row("FAILED", facts.speed_error)
    else:
        row("skipped", "--no-speed" if facts.speed_skipped else "no downloaded FIM model to test")

    lines += ["", f"Settings in effect (settings file: {user_settings_path()}"
                  f"{'' if user_settings_path().is_file() else ', absent'})"]
    for srow in facts.settings_rows:
        value = "–" if srow.value is None else json.dumps(srow.value) if not isinstance(
            srow.value, str) else srow.value
        row(srow.key, f"{value:<24} {srow.origin}")
    lines.append("  An editor's own settings (VS Code's starcoder.*, Neovim's init_options) override "
                 "these.")

    lines.append("")
    status = exit_status(findings)
    lines.append({EXIT_HEALTHY: "Healthy: nothing to fix.",
                  EXIT_WARNINGS: f"{len(findings)} warning(s):",
                  EXIT_MUST_FIX: "Must fix:"}[status])
    for f in findings:
        lines.append(f"  {'✗' if f.level == FIX else '!'} {f.problem}")
        lines.append(f"    fix: {f.fix}")
    return "\n".join(lines) + "\n"


def to_json(facts: Facts, findings: list[Finding]) -> dict[str, Any]:
    data = dataclasses.asdict(facts)
    data["settings"] = {r.key: r.value for r in facts.settings_rows}
    data["build"]["features"] = facts.build.features
    if facts.speed is not None:
        data["speed"].update(prompt_tps=round(facts.speed.prompt_tps, 1),
                             decode_tps=round(facts.speed.decode_tps, 1))
    data["estimates"] = {name: dataclasses.asdict(e) for name, e in estimates(facts).items()}
    data["findings"] = [dataclasses.asdict(f) for f in findings]
    data["exit_status"] = exit_status(findings)
    return data


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               model_args: Any) -> None:
    """`doctor` and its flags (`model_args` adds the settings' flags, as for `serve`)."""
    p = subparsers.add_parser("doctor", help="check this install and machine, with numbers "
                                             "(exit 0 healthy, 1 warnings, 2 must fix)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-speed", action="store_true", help="skip the ~5 s speed test")
    model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    facts = collect(cli_overrides(args), speed=not args.no_speed)
    findings = assess(facts)
    if args.json:
        sys.stdout.write(json.dumps(to_json(facts, findings), indent=2) + "\n")
    else:
        sys.stdout.write(render(facts, findings))
    return exit_status(findings)
