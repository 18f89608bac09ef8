"""The GitHub Actions workflows: actionlint-clean, and the PR diff workflow does what it says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PR_DIFF = WORKFLOWS / "pr-diff.yml"
MARKER = "<!-- hf-towers-diff -->"


def _actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.skip("actionlint not installed (pip install -r requirements-dev.txt)")
    return found


def _run_actionlint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        [_actionlint(), "-no-color", *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": env_path},
        check=False,
    )


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(PR_DIFF.read_text())
    assert isinstance(data, dict)
    return data


def _steps() -> list[dict[str, Any]]:
    steps = _workflow()["jobs"]["diff"]["steps"]
    assert isinstance(steps, list)
    return steps


def _step_using(action: str) -> dict[str, Any]:
    matches = [s for s in _steps() if str(s.get("uses", "")).startswith(action + "@")]
    assert len(matches) == 1, f"expected one step using {action}"
    return matches[0]


def test_all_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert PR_DIFF in files
    result = _run_actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_copy(tmp_path: Path) -> None:
    # Guards against a linter that passes everything (e.g. a wrong binary on PATH).
    broken = tmp_path / ".github" / "workflows" / "pr-diff.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(PR_DIFF.read_text().replace("role-to-assume:", "role-to-assum:"))
    result = _run_actionlint(broken, cwd=tmp_path)
    assert result.returncode != 0
    assert "role-to-assum" in result.stdout


def test_permissions_are_minimal() -> None:
    assert _workflow()["permissions"] == {
        "id-token": "write",
        "contents": "read",
        "pull-requests": "write",
    }


def test_runs_on_pull_requests() -> None:
    data = _workflow()
    triggers = data.get("on", data.get(True))  # PyYAML reads the key `on` as True
    assert isinstance(triggers, dict)
    assert "pull_request" in triggers


def test_actions_are_pinned() -> None:
    pinned = re.compile(r"^[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})$")
    uses = [str(s["uses"]) for s in _steps() if "uses" in s]
    assert uses
    for ref in uses:
        assert pinned.match(ref), f"{ref} is not pinned to a version tag or commit SHA"


def test_assumes_role_from_repository_variable() -> None:
    step = _step_using("aws-actions/configure-aws-credentials")
    assert step["with"]["role-to-assume"] == "${{ vars.CDK_DIFF_ROLE_ARN }}"
    assert "aws-region" in step["with"]
    assert "aws-access-key-id" not in step["with"]  # OIDC, no long-lived keys


def test_python_311_and_make_synth() -> None:
    assert _step_using("actions/setup-python")["with"]["python-version"] == "3.11"
    runs = [str(s.get("run", "")) for s in _steps()]
    assert any(r.strip() == "make synth" for r in runs)
    checkout = _step_using("actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # origin/<base> must exist for --base


def test_runs_cdk_diff_and_offline_report() -> None:
    steps = _steps()
    runs = "\n".join(str(s.get("run", "")) for s in steps)
    assert "npx cdk diff" in runs
    assert 'python main.py diff --base "origin/$BASE_REF"' in runs
    offline = next(s for s in steps if "main.py diff" in str(s.get("run", "")))
    assert offline["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert "--output offline-report.md" in offline["run"]


def test_posts_one_sticky_comment() -> None:
    step = _step_using("actions/github-script")
    script = step["with"]["script"]
    assert MARKER in script
    assert "updateComment" in script and "createComment" in script
    assert script.index("updateComment") < script.index("createComment")
    assert "offline-report.md" in script and "cdk-diff.txt" in script
