"""Config validation: every bad value fails with a message naming file, key, value and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hf_towers.config import ConfigError, TowerKind, load_config, parse_config
from tests.synth_helpers import DEFAULT_CONFIG, REPO, default_data


def test_default_config_describes_two_towers_and_a_task_model() -> None:
    config = load_config(DEFAULT_CONFIG)
    kinds = {name: tower.kind for name, tower in config.towers.items()}
    assert kinds == {"vision": TowerKind.VISION, "text": TowerKind.TEXT, "qa": TowerKind.TASK}
    assert config.towers["qa"].hf_task == "question-answering"
    assert config.towers["vision"].effective_code_dir == "model_code/vision"
    assert config.towers["qa"].effective_code_dir is None
    assert config.account is None  # synthesizes without credentials


@pytest.mark.parametrize(
    "path",
    # config/pipeline.yaml is the pipeline's file (tests/config/test_delivery.py), not an environment.
    sorted(p for p in (REPO / "config").glob("*.yaml") if p.name != "pipeline.yaml"),
    ids=lambda p: p.name,
)
def test_every_committed_config_is_valid(path: Path) -> None:
    assert load_config(path).towers


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config/bad.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("towers", "vision", "instance_type"),
            "g5.xlarge",
            "towers.vision.instance_type = 'g5.xlarge': must be a SageMaker instance type: use an ml.* type",
        ),
        (
            ("towers", "vision", "initial_instance_count"),
            0,
            "towers.vision.initial_instance_count = 0: must be an integer from 1 to 100",
        ),
        (
            ("towers", "text", "initial_instance_count"),
            "two",
            "towers.text.initial_instance_count = 'two': must be an integer",
        ),
        (
            ("region",),
            "mars-north-1",
            "region = 'mars-north-1': not an AWS region where SageMaker runs (botocore's endpoint data): use a region code such as us-east-1",
        ),
        # Region-shaped but not a region: a pattern passed it and synthesized an ECR image URI.
        (
            ("region",),
            "us-east-9",
            "region = 'us-east-9': not an AWS region where SageMaker runs (botocore's endpoint data): use one of us-east-1, us-east-2",
        ),
        (("account",), "12345", "account = '12345': must be a 12-digit AWS account id"),
        (
            ("towers", "qa", "model_uri"),
            "https://bucket/model.tar.gz",
            "towers.qa.model_uri = 'https://bucket/model.tar.gz': must be an S3 URI",
        ),
        (
            ("towers", "qa", "model_uri"),
            "s3://bucket",
            "towers.qa.model_uri = 's3://bucket': must be an S3 URI",
        ),
        (("removal_policy",), "keep", "removal_policy = 'keep': must be retain or destroy"),
        (
            ("towers", "vision", "kind"),
            "audio",
            "towers.vision.kind = 'audio': must be vision, text or task",
        ),
        (
            ("log_retention_days",),
            31,
            "log_retention_days = 31: must be one of CloudWatch Logs' retention values",
        ),
    ],
)
def test_bad_values_name_file_key_value_and_fix(
    path: tuple[str, ...], value: Any, expected: str
) -> None:
    data = default_data()
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    message = _error(data)
    assert f"config/bad.yaml: {expected}" in message


def test_unknown_key_is_rejected_with_its_path() -> None:
    data = default_data()
    data["towers"]["vision"]["instance_typ"] = "ml.g5.xlarge"
    assert (
        "config/bad.yaml: towers.vision.instance_typ: unknown key: remove it or check its spelling"
        in _error(data)
    )


def test_missing_required_key_is_named() -> None:
    data = default_data()
    del data["region"]
    assert "config/bad.yaml: region: required key is missing" in _error(data)


def test_all_problems_are_reported_at_once() -> None:
    data = default_data()
    data["region"] = "nowhere"
    data["towers"]["text"]["initial_instance_count"] = -1
    message = _error(data)
    assert "region = 'nowhere'" in message
    assert "towers.text.initial_instance_count = -1" in message


def test_task_model_needs_hf_task_and_no_code() -> None:
    data = default_data()
    del data["towers"]["qa"]["hf_task"]
    assert "kind 'task' needs hf_task" in _error(data)
    data = default_data()
    data["towers"]["qa"]["code_dir"] = "model_code/text"
    assert "remove code_dir/main_module_name" in _error(data)


def test_protected_environment_must_retain() -> None:
    data = default_data()
    data["protected"] = True
    data["removal_policy"] = "destroy"
    assert "a protected environment must keep its data: set removal_policy: retain" in _error(data)


def test_duplicate_endpoint_names_are_rejected() -> None:
    data = default_data()
    data["towers"]["vision"]["endpoint_name"] = "shared"
    data["towers"]["text"]["endpoint_name"] = "shared"
    assert "share the endpoint name(s) ['shared']" in _error(data)


def test_image_must_be_dlc_or_ecr_uri() -> None:
    data = default_data()
    data["towers"]["vision"]["image"] = "docker.io/library/python:3.12"
    assert "neither 'dlc', 'build' nor an ECR image URI" in _error(data)


def test_not_a_mapping_and_not_yaml(tmp_path: Path) -> None:
    assert "must hold a mapping" in _error(["a", "list"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("towers: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match=r"no such config file"):
        load_config(tmp_path / "absent.yaml")


def test_endpoint_name_defaults_to_project_environment_tower() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert config.endpoint_name("vision") == "hf-towers-dev-vision"


def test_model_source_is_exactly_one_of_uri_path_and_package() -> None:
    data = default_data()
    data["towers"]["vision"]["model_path"] = "models/clip"
    assert (
        "give exactly one of model_uri (s3://...), model_path (a local file or folder) and model_package"
        in _error(data)
    )
    data = default_data()
    del data["towers"]["text"]["model_uri"]
    assert "towers.text: give exactly one of model_uri" in _error(data)


def test_task_models_cannot_be_repacked_or_uploaded() -> None:
    data = default_data()
    del data["towers"]["qa"]["model_uri"]
    data["towers"]["qa"]["model_path"] = "models/qa.tar.gz"
    assert "upload it and set model_uri instead of model_path" in _error(data)
    data = default_data()
    data["towers"]["qa"]["compressed_model_data"] = False
    assert "compressed_model_data: false needs the repack" in _error(data)


def test_decompression_ratio_bound_must_exceed_one() -> None:
    data = default_data()
    data["towers"]["vision"]["max_decompression_ratio"] = 1
    assert "towers.vision.max_decompression_ratio = 1" in _error(data)


def test_a_prefix_model_uri_needs_uncompressed_data_and_a_vision_or_text_tower() -> None:
    data = default_data()
    data["towers"]["vision"]["model_uri"] = "s3://my-models/clip/"
    assert (
        "towers.vision: model_uri 's3://my-models/clip/' is a prefix (ends with '/'): set "
        "compressed_model_data: false" in _error(data)
    )
    data["towers"]["vision"]["compressed_model_data"] = False
    assert parse_config(data, "config/ok.yaml").towers["vision"].model_uri == "s3://my-models/clip/"
    data = default_data()
    data["towers"]["qa"]["model_uri"] = "s3://my-models/qa/"
    assert "kind 'task' deploys one model.tar.gz as it is" in _error(data)


def test_model_path_and_code_dir_must_exist_and_hold_the_entry_module(tmp_path: Path) -> None:
    data = default_data()
    del data["towers"]["vision"]["model_uri"]
    data["towers"]["vision"]["model_path"] = "no/such/model"
    assert "towers.vision: model_path 'no/such/model' does not exist" in _error(data)
    data["towers"]["vision"]["model_path"] = "README.md"
    assert "model_path 'README.md' is a file but not a .tar.gz" in _error(data)
    data = default_data()
    data["towers"]["text"]["code_dir"] = "no/such/code"
    assert "towers.text: code_dir 'no/such/code' is not a folder" in _error(data)
    data["towers"]["text"]["code_dir"] = "docs"  # a folder without inference.py
    assert "code_dir 'docs' has no inference.py (entry_module)" in _error(data)
    data["towers"]["text"]["code_dir"] = "model_code/text"
    data["towers"]["text"]["entry_module"] = "serve.py"
    assert "code_dir 'model_code/text' has no serve.py (entry_module)" in _error(data)


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_unreadable_files_get_a_message_not_a_traceback(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_bytes()
    cases = {
        "duplicate.yaml": (
            text + b"\nregion: eu-west-1\n",
            r"key 'region' appears twice in one mapping \(lines \d+ and \d+\): YAML would "
            "silently keep the last one; keep one of them",
        ),
        "latin1.yaml": (
            b"project: caf\xe9\n",
            r"latin1.yaml: byte 12 is not UTF-8 \(b'\\xe9'\): save the file as UTF-8",
        ),
        "binary.yaml": (b"\x1f\x8b\x08\0\0\0", r"binary.yaml: holds binary data \(NUL bytes\)"),
        "huge.yaml": (b"#" * (1024 * 1024 + 1), r"huge.yaml: 1048577 bytes is too large"),
    }
    for name, (content, message) in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config(_write(tmp_path, name, content))
    with pytest.raises(ConfigError, match=r"is a folder, not a config file: pass a file"):
        load_config(tmp_path)


def test_a_duplicate_key_deep_in_a_tower_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "dup.yaml",
        b"environment: dev\nregion: us-east-1\ntowers:\n  text:\n    kind: text\n"
        b"    model_uri: s3://my-models/a.tar.gz\n    instance_type: ml.m5.xlarge\n"
        b"    instance_type: ml.g5.xlarge\n",
    )
    with pytest.raises(ConfigError, match=r"key 'instance_type' appears twice .*lines 7 and 8"):
        load_config(path)


def test_derived_names_and_tower_sets_are_properties_of_the_config() -> None:
    data = default_data()
    data["towers"]["text"]["inference_mode"] = "async"
    data["towers"]["text"]["async_inference"] = {"output_prefix": "async/text/output"}
    data["towers"]["qa"]["deploy_endpoint"] = False
    config = parse_config(data, "test")
    assert config.prefix == "hf-towers-dev"
    assert (config.artifacts_stack_name, config.access_stack_name, config.api_stack_name) == (
        "hf-towers-dev-artifacts",
        "hf-towers-dev-access",
        "hf-towers-dev-api",
    )
    assert config.tower_stack_name("vision") == "hf-towers-dev-tower-vision"
    assert config.endpoint_names == ["hf-towers-dev-vision", "hf-towers-dev-text"]
    # async endpoints take InvokeEndpointAsync; a tower without an endpoint takes nothing
    assert config.invokable_towers == ["vision"]
    assert config.towers["vision"].scaling_bounds == (1, 2)  # default autoscaling: 1 to 2
