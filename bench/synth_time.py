"""Time `make synth` (venv and node_modules already present), then print where the time goes.

Usage: make bench-synth   (`python -m hf_towers.tools.synth_check`, what `make synth` runs, 3 times;
each run, the median, then bench/synth_breakdown.py)
       .venv/bin/python bench/synth_time.py --runs 5 --against /path/to/other/checkout
       (runs the other checkout's `make synth` interleaved with this one's: before/after on a
       shared machine; that checkout needs its .venv and node_modules, links will do)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import synth_breakdown  # type: ignore[import-not-found]  # noqa: E402


def _once(checkout: Path, config: str) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [
            str(checkout / ".venv/bin/python"),
            "-m",
            "hf_towers.tools.synth_check",
            "--config",
            config,
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{checkout}: make synth failed\n{result.stdout}{result.stderr}")
    return elapsed


def _summary(label: str, seconds: list[float]) -> str:
    return (
        f"{label}: median {statistics.median(seconds):.1f} s over {len(seconds)} runs "
        f"({min(seconds):.1f}-{max(seconds):.1f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", default="config/default.yaml")
    parser.add_argument("--against", type=Path, help="another checkout, run interleaved")
    parser.add_argument("--no-breakdown", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    checkouts = {"this checkout": REPO}
    if args.against:
        checkouts["against"] = args.against.resolve()
    seconds: dict[str, list[float]] = {label: [] for label in checkouts}
    for run in range(1, args.runs + 1):
        for label, checkout in checkouts.items():
            seconds[label].append(_once(checkout, args.config))
            print(f"run {run}: {label}: make synth {seconds[label][-1]:.1f} s", flush=True)
    load = os.getloadavg()[0]
    for label in checkouts:
        print(f"{_summary(label, seconds[label])} (target <= 7 s; load average {load:.1f})")
    if not args.no_breakdown:
        return int(synth_breakdown.main(["--config", args.config]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
