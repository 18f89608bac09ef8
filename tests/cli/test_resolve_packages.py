"""``main.py resolve-packages``: registry -> committed resolved file, end to end on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from hf_towers.cli import main
from hf_towers.config import load_config
from tests.synth_helpers import default_data

GROUP = "hf-towers-dual-encoder"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/infer:1"


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


def approve(client: Any, version: int) -> None:
    client.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {"Image": IMAGE, "ModelDataUrl": f"s3://example-ml-registry/{version}/model.tar.gz"}
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )


def _config(tmp_path: Path) -> Path:
    data = default_data()
    text = data["towers"]["text"]
    del text["model_uri"], text["model_version"]
    text["model_package"] = {"group": GROUP}
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_writes_the_file_synthesis_then_reads(
    sagemaker: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approve(sagemaker, 1)
    config = _config(tmp_path)
    resolved = tmp_path / "resolved"
    args = ["resolve-packages", "--config", str(config), "--resolved-dir", str(resolved)]
    assert main(args) == 0
    written = resolved / "dev.packages.json"
    entry = json.loads(written.read_text())["towers"]["text"]
    assert entry["version"] == 1
    assert entry["model_data_url"] == "s3://example-ml-registry/1/model.tar.gz"
    assert entry["model_package_arn"].endswith(f":model-package/{GROUP}/1")
    out = capsys.readouterr().out
    assert f"text: {GROUP} version 1 (latest-approved)" in out
    assert f"{written}: written" in out
    # Config loading now binds it (what app.py does).
    tower = load_config(config, resolved_dir=resolved).towers["text"]
    assert tower.model_package is not None and tower.model_package.resolved.version == 1

    before = written.read_text()
    assert main(args) == 0
    assert written.read_text() == before
    assert f"{written}: unchanged" in capsys.readouterr().out

    approve(sagemaker, 2)
    assert main([*args, "--check"]) == 1
    assert written.read_text() == before  # --check writes nothing
    assert "would change" in capsys.readouterr().out
    assert main(args) == 0
    assert json.loads(written.read_text())["towers"]["text"]["version"] == 2


def test_registry_problems_exit_3_with_the_tower_and_fix(
    sagemaker: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    code = main(["resolve-packages", "--config", str(config), "--resolved-dir", str(tmp_path)])
    assert code == 3
    err = capsys.readouterr().err
    assert "towers.text.model_package (group 'hf-towers-dual-encoder')" in err
    assert "no Approved package version" in err
    assert not (tmp_path / "dev.packages.json").exists()


def test_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("environment: dev\nregion: us-east-1\ntowers: {}\n")
    assert main(["resolve-packages", "--config", str(path)]) == 2
    assert f"{path}: towers" in capsys.readouterr().err


def test_a_config_without_package_towers_calls_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(default_data()))
    assert main(["resolve-packages", "--config", str(path), "--resolved-dir", str(tmp_path)]) == 0
    assert "no model_package towers, nothing to resolve" in capsys.readouterr().out
    assert list(tmp_path.glob("*.json")) == []
