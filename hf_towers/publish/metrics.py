"""Metrics of an evaluation report, flattened for a model card's ``model-index``.

The report is JSON. Every number in it, at any depth, is a metric, and so is every object of the
form ``{"value": <number>, ...}`` (SageMaker's model-quality statistics shape, which a Pipelines
``JsonGet`` reads, e.g. ``{"retrieval_metrics": {"recall_at_1": {"value": 0.42}}}``). A metric's
name is its key path; its type is its last key, or as many of its last keys as tell it apart
from the others, joined with ``_`` (``text_to_image_recall_at_1``). Booleans, strings and lists are not metrics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_REPORT_BYTES = 1024 * 1024
EXAMPLE = '{"retrieval_metrics": {"recall_at_1": {"value": 0.42}}}'


class ReportError(ValueError):
    """An evaluation report that cannot be read; the message names it and the fix."""


@dataclass(frozen=True)
class Metric:
    """One number of the report."""

    path: tuple[str, ...]
    value: float
    type: str

    @property
    def name(self) -> str:
        """The key path, readable: ``retrieval_metrics / recall_at_1``."""
        return " / ".join(self.path)


def _walk(node: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], float]]:
    if isinstance(node, bool) or node is None or isinstance(node, str | list):
        return []
    if isinstance(node, int | float):
        return [(path, float(node))] if path else []
    if isinstance(node, dict):
        value = node.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool) and path:
            return [(path, float(value))]
        found: list[tuple[tuple[str, ...], float]] = []
        for key, child in node.items():
            found.extend(_walk(child, (*path, str(key))))
        return found
    return []


def parse_report(data: Any, source: str) -> list[Metric]:
    """The metrics of already-parsed report ``data``; ``source`` names it in messages."""
    found = _walk(data, ())
    if not found:
        raise ReportError(
            f"{source}: no metrics found (no numbers in it): the report must be a JSON object "
            f"of numbers, e.g. {EXAMPLE}"
        )
    bad = [" / ".join(path) for path, value in found if not math.isfinite(value)]
    if bad:
        raise ReportError(
            f"{source}: {', '.join(bad)} is not a finite number: a model card's metrics must be "
            "real numbers; fix the evaluation"
        )
    return [Metric(path, value, _type(path, [p for p, _ in found])) for path, value in found]


def _type(path: tuple[str, ...], paths: list[tuple[str, ...]]) -> str:
    """The shortest end of ``path`` no other metric's path ends with, joined with ``_``."""
    for size in range(1, len(path) + 1):
        end = path[-size:]
        if sum(1 for other in paths if other[-size:] == end) == 1:
            return "_".join(end)
    return "_".join(path)


def parse_report_bytes(raw: bytes, source: str) -> list[Metric]:
    """Decode and parse a report read from a file or S3."""
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportError(
            f"{source}: {len(raw)} bytes is larger than an evaluation report "
            f"({MAX_REPORT_BYTES} at most): point at the evaluation.json itself"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(
            f"{source}: not a JSON evaluation report ({exc}): expected e.g. {EXAMPLE}"
        ) from None
    return parse_report(data, source)


def load_report(path: Path) -> list[Metric]:
    """The metrics of a local report (``--metrics FILE``)."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise ReportError(
            f"--metrics {path}: cannot be read ({exc.strerror or exc}): pass the evaluation.json "
            "the evaluation wrote"
        ) from None
    return parse_report_bytes(raw, f"--metrics {path}")
