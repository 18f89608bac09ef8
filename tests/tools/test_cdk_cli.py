"""The CDK CLI runner: the CLI's noise lines are dropped, everything else passes through."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pytest

from hf_towers.tools import cdk_cli

FAKE_CLI = """
import sys
print()
print("Successfully synthesized to /tmp/out")
print("Supply a stack id (a-artifacts, a-tower-text) to display its template.")
print("74 feature flags are not configured. Run 'cdk flags --unstable=flags' to learn more.")
print("[Warning at /a-tower-text] a real warning", file=sys.stderr)
sys.exit(3)
"""


def test_noise_is_dropped_and_warnings_and_the_exit_code_are_kept(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_command(args: Sequence[str]) -> list[str]:
        return [sys.executable, "-c", FAKE_CLI]

    monkeypatch.setattr(cdk_cli, "cdk_command", fake_command)
    assert cdk_cli.quiet_run_cdk(["synth", "--quiet"]) == 3
    out, err = capsys.readouterr()
    assert out == "Successfully synthesized to /tmp/out\n"
    assert err == "[Warning at /a-tower-text] a real warning\n"
