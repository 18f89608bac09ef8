"""Time `make synth` (venv and node_modules already present) and print the figures.

Usage: make bench-synth   (runs `make synth` 3 times; prints each run and the median)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 3


def main() -> int:
    seconds = []
    for run in range(1, RUNS + 1):
        started = time.monotonic()
        result = subprocess.run(
            ["make", "-s", "synth"], cwd=REPO, capture_output=True, text=True, check=False
        )
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            return result.returncode
        seconds.append(elapsed)
        print(f"run {run}: make synth {elapsed:.1f} s")
    print(
        f"median: {statistics.median(seconds):.1f} s over {RUNS} runs (target <= 20 s on 2 cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
