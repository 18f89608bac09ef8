"""``make synth`` (hf_towers.tools.synth_check): a failed synth never reports an older assembly."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from hf_towers.tools import synth_check


def test_a_failed_synth_does_not_report_the_previous_cdk_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "cdk.out"
    stale.mkdir()
    (stale / "Old.template.json").write_text(json.dumps({"Resources": {}}))
    (stale / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "Old": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "Old.template.json"},
                    }
                }
            }
        )
    )
    calls: list[Sequence[str]] = []

    def failing_cdk(args: Sequence[str]) -> int:
        calls.append(args)
        return 1  # the CLI failed before writing an assembly

    monkeypatch.setattr(synth_check, "REPO", tmp_path)
    monkeypatch.setattr(synth_check, "quiet_run_cdk", failing_cdk)
    assert synth_check.main(["--config", "config/broken.yaml"]) == 1
    out, err = capsys.readouterr()
    assert "synth failed (exit 1)" in err
    assert "Old" not in out and "PASS" not in out
    assert not stale.exists()
    assert calls and "config=config/broken.yaml" in calls[0]
