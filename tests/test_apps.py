"""``app.py`` and ``pipeline_app.py`` as the CDK CLI runs them: a user's error is one line
naming the file, the key and the fix, never a Python traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.synth_helpers import REPO, default_data


def _run(app: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / app)],
        cwd=REPO,
        env={**os.environ, **env, "CDK_OUTDIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_versions_without_a_dlc_image_are_a_message_naming_file_and_tower(tmp_path: Path) -> None:
    data = default_data()
    data["towers"]["text"]["transformers_version"] = "9.9.9"
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(data))
    result = _run("app.py", {"HF_TOWERS_CONFIG": str(config)}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"error: {config}: towers.text: no Hugging Face inference image for transformers 9.9.9"
        in (result.stderr)
    )
    assert "or set image to an ECR URI" in result.stderr


def test_a_bad_config_file_is_a_message(tmp_path: Path) -> None:
    config = tmp_path / "dup.yaml"
    config.write_text("environment: dev\nenvironment: prod\n")
    result = _run("app.py", {"HF_TOWERS_CONFIG": str(config)}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "key 'environment' appears twice" in result.stderr


def test_the_pipeline_app_reports_a_missing_file(tmp_path: Path) -> None:
    result = _run("pipeline_app.py", {"HF_TOWERS_PIPELINE": "config/none.yaml"}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no such pipeline config" in result.stderr


def test_a_missing_function_wheel_is_a_message_naming_the_file_and_the_command(
    tmp_path: Path,
) -> None:
    """As on a clone where ``make function-wheels`` has not run (the wheels folder is empty)."""
    wheels = tmp_path / "function-wheels"
    start = (
        "import runpy, sys; from pathlib import Path; "
        "from hf_towers.constructs.repack import vendor; vendor.WHEELS = Path(sys.argv[1]); "
        "runpy.run_path('app.py', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", start, str(wheels)],
        cwd=REPO,
        env={**os.environ, "CDK_OUTDIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"error: missing file {wheels}/zlib_ng-1.1.0-cp314-*manylinux*_x86_64*.whl: the "
        "zlib-ng==1.1.0 wheel that hf_towers/constructs/repack/requirements-function.txt pins"
    ) in result.stderr
    assert "fetch it with `make function-wheels`" in result.stderr
