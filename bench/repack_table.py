"""The README's repack tables from ``bench/results/repack.json`` (what ``make bench-repack`` wrote).

``.venv/bin/python bench/repack_table.py [results.json]`` prints two Markdown tables: seconds per
tool with the SDK's time over ours and the fast path over the server's own copy; and where the CPU
went (ours and the server's), with the floor that CPU puts on this machine's cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "repack.json"
MIB = 1024 * 1024


def seconds(entry: dict[str, Any]) -> str:
    s = entry["seconds"]
    return f"{s['median']:.1f} s ({s['min']:.1f}-{s['max']:.1f})"


def ours(e: dict[str, Any], tool: str) -> str:
    """Our seconds, and the SDK's time over ours where the SDK ran."""
    if tool not in e:
        return "-"
    ratio = e.get(f"ratio_sdk_over_{tool}")
    return seconds(e[tool]) + (f" ({ratio:.1f}x)" if ratio else "")


def tables(results: dict[str, Any]) -> None:
    """Print both tables of a results document (also ``make bench-repack``'s last output)."""
    cores = results["machine"]["cpus"]
    print(
        "| server | size | weights | SDK `repack_model` | ours, fast path (SDK / ours) "
        "| ours, stream path (SDK / ours) | server's copy alone | fast path / copy "
        "| fast path: peak RSS, written | stream path: peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = [
        (server, size, kind, e)
        for server, sizes in results["servers"].items()
        for size, kinds in sizes.items()
        for kind, e in kinds.items()
    ]
    for server, size, kind, e in rows:
        fast, stream = e.get("ours_fast"), e.get("ours_stream")
        cells = [
            server,
            size.replace("MiB", " MiB"),
            kind,
            seconds(e["sdk"]) if "sdk" in e else "-",
            ours(e, "ours_fast"),
            ours(e, "ours_stream"),
            f"{e['server_copy_seconds']['median']:.1f} s",
            f"{e['ratio_ours_fast_over_server_copy']:.2f}" if fast else "-",
            f"{fast['peak_rss_bytes'] / MIB:.0f} MiB, {fast['s3_bytes_written'] / MIB:.1f} MiB"
            if fast
            else "-",
            f"{stream['peak_rss_bytes'] / MIB:.0f} MiB" if stream else "-",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    print(
        f"| server | size | weights | tool | CPU: ours + server's (+ the bench's byte-counting "
        f"proxy) | all of it on {cores} cores "
        "| measured | server's CPU for its copy alone |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for server, size, kind, e in rows:
        for tool in ("sdk", "ours_fast", "ours_stream"):
            if tool not in e or "cpu_seconds" not in e[tool]:
                continue
            cpu = e[tool]["cpu_seconds"]
            cells = [
                server,
                size.replace("MiB", " MiB"),
                kind,
                tool.replace("ours_", "ours, ").replace("sdk", "SDK"),
                f"{cpu['tool']:.1f} s + {cpu['server']:.1f} s"
                + (f" + {cpu['proxy']:.1f} s" if "proxy" in cpu else ""),
                f"{e[tool]['cpu_bound_seconds']:.1f} s",
                f"{e[tool]['seconds']['median']:.1f} s",
                f"{e['server_copy_cpu_seconds']:.1f} s" if tool == "ours_fast" else "",
            ]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    tables(json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else RESULTS).read_text()))


if __name__ == "__main__":
    main()
