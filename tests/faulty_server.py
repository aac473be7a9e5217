"""A test-only entry point: `python -m tests.faulty_server [--load-delay S] [--memory-limit-mb N]
serve …` runs the real server with a model loader that stalls (requests must not wait for a load)
or that sees less memory than the machine has (the memory checks must refuse or shrink). The
product has no such switches: the fault comes in through `cli.main`'s `loader`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from lsp_server import cli
from lsp_server.engine.model import LoadedModel, LoadOptions, load_model


def faulty_loader(delay_s: float, memory_limit_mb: float | None) -> Any:
    def load(path: Path, family: Any, options: LoadOptions, name: str) -> LoadedModel:
        time.sleep(delay_s)
        if memory_limit_mb is not None:
            options = dataclasses.replace(options, memory_cap=int(memory_limit_mb * 2**20))
        return load_model(path, family, options, name)

    return load


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-delay", type=float, default=0.0)
    parser.add_argument("--memory-limit-mb", type=float, default=None)
    faults, rest = parser.parse_known_args(argv)
    return cli.main(rest, loader=faulty_loader(faults.load_delay, faults.memory_limit_mb))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
