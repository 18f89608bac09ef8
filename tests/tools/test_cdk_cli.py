"""The CDK CLI runner: the CLI's noise lines are dropped, everything else passes through; the app
started without the CLI gets the CLI's context and writes the CLI's cloud assembly."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

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


def test_the_app_context_is_the_clis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".cdk.json").write_text(json.dumps({"context": {"a": 1, "b": 1}}))
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "x", "context": {"b": 2, "c": 2}}))
    (tmp_path / "cdk.context.json").write_text(json.dumps({"c": 3, "d": 3}))
    context = cdk_cli.app_context({"d": "4", "aws:cdk:version-reporting": "no"}, cwd=tmp_path)
    assert context == {"a": 1, "b": 2, "c": 3, "d": "4", **cdk_cli.CLI_CONTEXT}


@pytest.mark.slow
def test_the_app_started_without_the_cli_writes_the_clis_assembly(tmp_path: Path) -> None:
    """Byte for byte: templates, manifest, asset manifests, tree and the nag report."""
    cli_out, app_out = tmp_path / "cli", tmp_path / "app"
    args = ["synth", "--quiet", "-c", "config=config/default.yaml", "--output", str(cli_out)]
    assert cdk_cli.quiet_run_cdk(args) == 0
    assert cdk_cli.start_app(app_out, {"config": "config/default.yaml"}).wait() == 0
    names = sorted(p.name for p in cli_out.iterdir())
    assert names == sorted(p.name for p in app_out.iterdir())
    assert sum(name.endswith(".template.json") for name in names) == 5
    for name in names:
        if name.endswith(".json"):
            assert (app_out / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert cdk_cli.missing_context(app_out) == []
