"""``hf_towers.publish.metrics``: every number of an evaluation report becomes a card metric,
named by its key path; reports that hold none, or that are not JSON, are refused with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_towers.publish.metrics import (
    MAX_REPORT_BYTES,
    ReportError,
    load_report,
    parse_report,
    parse_report_bytes,
)


def test_sagemaker_statistics_shape_and_plain_numbers_are_metrics() -> None:
    report = {
        "retrieval_metrics": {
            "image_to_text": {"recall_at_1": {"value": 0.6, "standard_deviation": 0.1}},
            "text_to_image": {"recall_at_1": {"value": 0.5}, "recall_at_5": 0.9},
        },
        "epochs": 3,
        "passed": True,
        "model": "clip",
        "history": [0.1, 0.2],
    }
    metrics = parse_report(report, "evaluation.json")
    assert [(m.path, m.value, m.type) for m in metrics] == [
        (("retrieval_metrics", "image_to_text", "recall_at_1"), 0.6, "image_to_text_recall_at_1"),
        (("retrieval_metrics", "text_to_image", "recall_at_1"), 0.5, "text_to_image_recall_at_1"),
        (("retrieval_metrics", "text_to_image", "recall_at_5"), 0.9, "recall_at_5"),
        (("epochs",), 3.0, "epochs"),
    ]
    assert metrics[0].name == "retrieval_metrics / image_to_text / recall_at_1"


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ({"passed": True, "note": "x"}, "no metrics found"),
        (3, "no metrics found"),
        ({"recall": {"value": float("nan")}}, "recall is not a finite number"),
    ],
)
def test_reports_without_usable_numbers_are_refused(report: object, expected: str) -> None:
    with pytest.raises(ReportError, match=expected) as info:
        parse_report(report, "evaluation.json")
    assert str(info.value).startswith("evaluation.json: ")


def test_bytes_that_are_not_json_or_too_large_are_refused() -> None:
    with pytest.raises(ReportError, match=r"not a JSON evaluation report .*expected e.g."):
        parse_report_bytes(b"recall=0.5", "s3://b/evaluation.json")
    with pytest.raises(ReportError, match="larger than an evaluation report"):
        parse_report_bytes(b" " * (MAX_REPORT_BYTES + 1), "s3://b/evaluation.json")


def test_load_report_names_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps({"recall_at_1": 0.25}))
    assert [(m.type, m.value) for m in load_report(path)] == [("recall_at_1", 0.25)]
    with pytest.raises(ReportError, match=r"--metrics .*missing\.json: cannot be read"):
        load_report(tmp_path / "missing.json")
    with pytest.raises(ReportError, match=r"--metrics .*: cannot be read"):
        load_report(tmp_path)
