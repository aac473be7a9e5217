"""Event-loop stalls with hostile documents: the worst lag the server measures in itself.

Each round opens, edits (five keystrokes in the middle of the longest line), code-actions (five
ranges, one of them the whole document), completes in (twice) and closes every document of
testkit/hostile.py (100 KB lines of spaces and brackets, a 1 MB minified bundle, deep nesting, a
95,000-line table), and completes in a normal file that has them as context, with the tiny
StarCoder GGUF, in both editor presets. After each document the server's `starcoder/stats`
`loopLagMs` (the worst drift of its 10 ms event-loop probe since the previous stats call) is read.
A control round does the same with a small ordinary file, to show the machine's own noise.
Prints the worst lag per document and overall; writes benchmarks/results/loop-lag-STAMP.json.

    python -m benchmarks.loop_lag [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import timestamp, write_results
from testkit.hostile import HOSTILE_DOCUMENTS, hostile_round
from testkit.sessions import PRESETS, lsp_session
from testkit.tiny_models import write_tiny_starcoder

BASE = "file:///tmp/starcoder-lag"
NORMAL = f"{BASE}/normal.py"
CONTROL = {"ordinary": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"}


async def _rounds(preset: str, model: Path, rounds: int) -> dict[str, list[float]]:
    lags: dict[str, list[float]] = {}
    async with lsp_session(preset, {"model": str(model), "threads": 1, "maxTokens": 4}) as s:
        await s.wait_status("ready")
        s.open(NORMAL, "def add(a, b):\n    \n")
        for _ in range(rounds):
            for docs in (CONTROL, HOSTILE_DOCUMENTS):
                got = await hostile_round(s, BASE, NORMAL, docs)
                for name, ms in got.items():
                    lags.setdefault(name, []).append(ms)
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = write_tiny_starcoder(Path(tempfile.mkdtemp()) / "tiny-starcoder.gguf")
    results: dict[str, Any] = {"rounds": args.rounds, "load": os.getloadavg(), "presets": {}}
    for preset in PRESETS:
        lags = asyncio.run(_rounds(preset, model, args.rounds))
        results["presets"][preset] = lags
        print(f"\n{preset}: worst event-loop lag (ms) over {args.rounds} rounds")
        for name, values in lags.items():
            print(f"  {name:28s} max {max(values):6.1f}   all {values}")
        worst = max(max(v) for k, v in lags.items() if k in HOSTILE_DOCUMENTS)
        print(f"  worst with hostile documents: {worst:.1f} ms "
              f"(control {max(lags['ordinary']):.1f} ms)")
    results["worst_ms"] = max(max(v) for p in results["presets"].values()
                              for k, v in p.items() if k in HOSTILE_DOCUMENTS)
    results["load_after"] = os.getloadavg()
    print(f"\nworst event-loop lag with hostile documents, both presets: {results['worst_ms']:.1f} ms"
          f" (load average before {results['load'][0]:.2f}, after {results['load_after'][0]:.2f})")
    print(f"written to {write_results('loop-lag', timestamp(), results)}")


if __name__ == "__main__":
    main()
