"""``config/pipeline.yaml`` and the environments it deploys (hf_towers/config/pipeline.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hf_towers.config.pipeline import (
    PipelineConfigError,
    load_pipeline_config,
    load_pipeline_environments,
    parse_pipeline_config,
)
from tests.synth_helpers import REPO, default_data

CONNECTION = (
    "arn:aws:codeconnections:us-east-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
)


def test_committed_pipeline_config_and_its_environments_are_valid() -> None:
    pipeline = load_pipeline_config(REPO / "config" / "pipeline.yaml")
    environments = load_pipeline_environments(pipeline, REPO)
    assert [e.environment for e in environments] == ["dev", "staging", "prod"]
    assert len({e.account for e in environments} | {pipeline.tooling_account}) == 4
    assert [e.protected for e in environments] == [False, False, True]
    assert environments[-1].removal_policy.value == "retain"
    assert all(e.api.enabled for e in environments)


def _pipeline(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tooling_account": "999999999999",
        "tooling_region": "us-east-1",
        "repository": "my-org/hf-towers",
        "connection_arn": CONNECTION,
        "environments": ["config/dev.yaml"],
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"tooling_account": 12345},
            "tooling_account = 12345: must be the 12-digit tooling account id",
        ),
        (
            {"tooling_region": "moon-1"},
            "tooling_region = 'moon-1': not an AWS region where CodePipeline runs",
        ),
        (
            {"tooling_region": "us-east-9"},
            "tooling_region = 'us-east-9': not an AWS region where CodePipeline runs (botocore's endpoint data): use one of us-east-1, us-east-2",
        ),
        (
            {"repository": "hf-towers"},
            "repository = 'hf-towers': must be owner/name of the repository",
        ),
        (
            {"connection_arn": "arn:aws:iam::999999999999:role/x"},
            "connection_arn = 'arn:aws:iam::999999999999:role/x': must be a CodeStar/CodeConnections connection ARN",
        ),
        ({"environments": []}, "environments = []: must list environment config files"),
        (
            {"environments": ["dev.json"]},
            "environments.0 = 'dev.json': must list environment config files",
        ),
        (
            {"environments": ["config/dev.yaml", "config/dev.yaml"]},
            "environments lists a file twice: list each environment once",
        ),
        ({"stages": []}, "test.yaml: stages: unknown key: remove it"),
        (
            {"tooling_account": None},
            "tooling_account = None: must be the 12-digit tooling account id",
        ),
    ],
)
def test_bad_pipeline_values_name_key_and_fix(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_pipeline_config(_pipeline(**changes), "test.yaml")
    assert expected in str(info.value)


def test_missing_pipeline_key_and_file() -> None:
    data = _pipeline()
    del data["connection_arn"]
    with pytest.raises(
        PipelineConfigError, match=re.escape("test.yaml: connection_arn: required key is missing")
    ):
        parse_pipeline_config(data, "test.yaml")
    with pytest.raises(PipelineConfigError, match="no such pipeline config"):
        load_pipeline_config(Path("config/none.yaml"))
    with pytest.raises(PipelineConfigError, match="config: is a folder, not a pipeline config"):
        load_pipeline_config(Path("config"))


def test_pipeline_environments_need_accounts_one_project_and_distinct_names(tmp_path: Path) -> None:
    def write(name: str, **changes: Any) -> str:
        data = default_data()
        data.update(changes)
        (tmp_path / name).write_text(yaml.safe_dump(data))
        return name

    files = [
        write("a.yaml"),  # account null (the built-in default)
        write("b.yaml", account="111111111111", project="other"),
        write("c.yaml", account="222222222222"),
        write("d.yaml", account="333333333333", region="mars"),
    ]
    pipeline = parse_pipeline_config(_pipeline(environments=files), "test.yaml")
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline_environments(pipeline, tmp_path)
    message = str(info.value)
    assert (
        "a.yaml: account = None: a pipeline stage deploys into a fixed account: set account"
        in message
    )
    assert "b.yaml: project = 'other': the pipeline deploys project 'hf-towers'" in message
    assert (
        "c.yaml: environment = 'dev': another file of the pipeline has the same environment name"
        in message
    )
    assert "region = 'mars': not an AWS region where SageMaker runs" in message
