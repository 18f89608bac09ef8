"""The GitHub Actions workflows: actionlint-clean, and the PR diff workflow does what it says."""

from __future__ import annotations

import json
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


def _steps(job: str | None = None) -> list[dict[str, Any]]:
    jobs = _workflow()["jobs"]
    steps = [step for name in ([job] if job else list(jobs)) for step in jobs[name]["steps"]]
    assert steps
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


def test_assumes_each_environments_role_from_its_repository_variable() -> None:
    step = _step_using("aws-actions/configure-aws-credentials")
    assert step["with"]["role-to-assume"] == "${{ vars[matrix.role_variable] }}"
    assert step["with"]["aws-region"].startswith("${{ matrix.region ||")
    assert "aws-access-key-id" not in step["with"]  # OIDC, no long-lived keys


def test_python_311_and_make_synth() -> None:
    for job in ("diff", "cdk-diff"):
        setup = [
            s for s in _steps(job) if str(s.get("uses", "")).startswith("actions/setup-python@")
        ]
        assert [s["with"]["python-version"] for s in setup] == ["3.11"]
    runs = [str(s.get("run", "")) for s in _steps("diff")]
    assert any(r.strip() == "make synth" for r in runs)
    checkout = next(
        s for s in _steps("diff") if str(s.get("uses", "")).startswith("actions/checkout@")
    )
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
    assert "reports/offline-report.md" in script and "reports/cdk-diff-${env.name}.txt" in script


def _deployed_environment_files() -> set[str]:
    """Independently of the code under test: config/*.yaml but the pipeline file, and the
    files config/pipeline.yaml lists."""
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "config").glob("*.y*ml")}
    files.discard("config/pipeline.yaml")
    pipeline = yaml.safe_load((ROOT / "config" / "pipeline.yaml").read_text())
    return files | set(pipeline["environments"])


def test_every_deployed_environment_file_is_diffed() -> None:
    jobs = _workflow()["jobs"]
    listing = next(s for s in _steps("diff") if s.get("id") == "environments")
    assert jobs["diff"]["outputs"]["environments"] == (
        "${{ steps.environments.outputs.environments }}"
    )
    # Run the listing step's command as the workflow does: the matrix it produces.
    command = str(listing["run"]).splitlines()[0].split("$(", 1)[1].rsplit(")", 1)[0]
    result = subprocess.run(
        [sys.executable, *command.split()[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    matrix = json.loads(result.stdout)
    assert {row["config"] for row in matrix} == _deployed_environment_files()
    assert len({row["name"] for row in matrix}) == len(matrix)  # artifact names are unique
    prod = next(row for row in matrix if row["config"] == "config/prod.yaml")
    assert prod == {
        "config": "config/prod.yaml",
        "name": "prod",
        "role_variable": "CDK_DIFF_ROLE_ARN_PROD",
        "region": "eu-west-1",
    }
    cdk = jobs["cdk-diff"]
    assert (
        cdk["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.diff.outputs.environments) }}"
    )
    assert cdk["env"]["CONFIG"] == "${{ matrix.config }}"
    run = next(str(s["run"]) for s in cdk["steps"] if "npx cdk diff" in str(s.get("run", "")))
    assert '-c "config=$CONFIG"' in run  # each environment's own stacks, not the default's
    # The comment has one cdk diff section per listed environment.
    assert jobs["comment"]["needs"] == ["diff", "cdk-diff"]
    script = _step_using("actions/github-script")
    assert script["env"]["ENVIRONMENTS"] == "${{ needs.diff.outputs.environments }}"
