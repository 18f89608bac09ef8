"""Seed CLI parity: ``main.py deploy|synth|diff`` flags, defaults and environment variables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from hf_towers.cli import build_parser, deploy
from hf_towers.cli.deploy import build_config, tower_name
from hf_towers.config import ConfigError, parse_config
from tests.synth_helpers import default_data

REQUIRED = [
    "--model_type",
    "vision",
    "--model_name",
    "clip_vision",
    "--model_uri",
    "s3://ml-bucket/clip/model.tar.gz",
    "--endpoint_name",
    "clip-vision",
]


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _tower(argv: list[str], environ: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    name, config, data = build_config(_parse(argv), environ or {})
    assert list(config.towers)[-1] == name
    return name, data["towers"][name]


def test_seed_defaults() -> None:
    name, tower = _tower(["deploy", *REQUIRED])
    assert name == "clip-vision"
    assert tower == {
        "kind": "vision",
        "model_uri": "s3://ml-bucket/clip/model.tar.gz",
        "endpoint_name": "clip-vision",
        "instance_type": "ml.g5.8xlarge",
        "initial_instance_count": 1,
        "deploy_endpoint": False,  # the seed deploys the model only unless asked
    }


def test_every_optional_flag() -> None:
    _, tower = _tower(
        [
            "synth",
            *REQUIRED,
            "--instance_type",
            "ml.g5.2xlarge",
            "--initial_instance_count_endpoint",
            "3",
            "--deploy_model_as_endpoint",
            "--usr_code_dir",
            "model_code/vision",
            "--docker_image",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/clip:1",
            "--main_module_name",
            "my_clip",
        ]
    )
    assert tower["instance_type"] == "ml.g5.2xlarge"
    assert tower["initial_instance_count"] == 3
    assert tower["deploy_endpoint"] is True
    assert tower["code_dir"] == "model_code/vision"
    assert tower["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/clip:1"
    assert tower["main_module_name"] == "my_clip"


def test_seed_environment_variables_fill_missing_flags_and_flags_win() -> None:
    environ = {
        "MODEL_NAME": "text_tower",
        "MODEL_URI": "s3://ml-bucket/text/model.tar.gz",
        "ENDPOINT_NAME": "text-ep",
        "INSTANCE_TYPE": "ml.m5.xlarge",
        "INITIAL_INSTANCE_COUNT": "2",
        "DEPLOY_MODEL_AS_ENDPOINT": "True",
        "USR_CODE_DIR": "model_code/text",
        "MAIN_MODULE_NAME": "towers",
    }
    name, tower = _tower(
        ["deploy", "--model_type", "text", "--instance_type", "ml.c5.xlarge"], environ
    )
    assert name == "text-tower"
    assert tower["model_uri"] == "s3://ml-bucket/text/model.tar.gz"
    assert tower["endpoint_name"] == "text-ep"
    assert tower["instance_type"] == "ml.c5.xlarge"  # the flag wins over INSTANCE_TYPE
    assert tower["initial_instance_count"] == 2
    assert tower["deploy_endpoint"] is True
    assert tower["code_dir"] == "model_code/text"
    assert tower["main_module_name"] == "towers"


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            ["deploy", "--model_type", "vision"],
            {},
            "the following arguments are required: --model_name, --model_uri, --endpoint_name",
        ),
        (
            ["deploy", *REQUIRED, "--initial_instance_count_endpoint", "many"],
            {},
            "'many' is not an integer",
        ),
        (
            ["deploy", *REQUIRED],
            {"DEPLOY_MODEL_AS_ENDPOINT": "perhaps"},
            "DEPLOY_MODEL_AS_ENDPOINT='perhaps': use true or false",
        ),
        (
            ["deploy", *REQUIRED, "--instance_type", "g5.xlarge"],
            {},
            "instance_type = 'g5.xlarge': must be a SageMaker instance type",
        ),
        (
            ["deploy", *REQUIRED, "--usr_code_dir", "no/such/dir"],
            {},
            "--usr_code_dir 'no/such/dir' is not a directory",
        ),
        (
            ["deploy", *REQUIRED, "--initial_instance_count_endpoint", "0"],
            {},
            "initial_instance_count = 0: must be an integer from 1 to 100",
        ),
    ],
)
def test_bad_input_gets_argparse_errors(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        build_config(_parse(argv), environ)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_model_type_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(["deploy", "--model_type", "audio"])
    assert "invalid choice: 'audio'" in capsys.readouterr().err


def test_dry_run_prints_the_generated_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["deploy", *REQUIRED, "--dry-run"])
    assert args.func(args, {}) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["towers"]["clip-vision"]["kind"] == "vision"
    assert data["region"] == "us-east-1"  # from config/default.yaml


def test_tower_name_normalises_or_refuses() -> None:
    assert tower_name("My_CLIP.Vision") == "my-clip-vision"
    with pytest.raises(ValueError, match="gives no usable name"):
        tower_name("__")


def test_the_model_name_and_uri_messages_say_the_real_rule() -> None:
    """``--model_name m`` was refused with a hint to use letters (it is one); a two-letter
    bucket was refused without saying bucket names need three characters."""
    with pytest.raises(ValueError, match="needs at least two letters, digits or '-'"):
        tower_name("m")
    assert tower_name("mm") == "mm"
    data = default_data()
    data["towers"]["text"]["model_uri"] = "s3://ab/model.tar.gz"
    with pytest.raises(ConfigError, match="whose bucket name is 3-63 lowercase letters"):
        parse_config(data, "flags")


def test_deploy_imports_log_groups_a_deleted_stack_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(deploy, "GENERATED_DIR", tmp_path)

    def run_cdk(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr(deploy, "run_cdk", run_cdk)
    monkeypatch.setattr(deploy, "quiet_run_cdk", run_cdk)  # synth and diff: without the noise
    for verb in ("deploy", "synth"):
        args = _parse([verb, *REQUIRED])
        assert args.func(args, {}) == 0
    deployed, synthesized = calls
    assert deployed[0] == "deploy" and "--import-existing-resources" in deployed
    assert "--require-approval" in deployed
    assert "--import-existing-resources" not in synthesized


def test_the_cli_tower_joins_the_environments_towers_so_the_access_stack_keeps_them() -> None:
    """A one-tower config redeployed <project>-<env>-access with only the CLI's tower: every
    config-managed tower lost its deployer permissions (PassRole)."""
    from tests.synth_helpers import templates

    name, config, data = build_config(_parse(["deploy", *REQUIRED]), {})
    assert list(config.towers) == ["vision", "text", "qa", name]
    access = templates(data)[config.access_stack_name]
    (policy,) = access["Resources"].values()
    (pass_role,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "PassTowerRolesToSageMaker"
    ]
    assert len(pass_role["Resource"]) == 4  # the three towers of the file and the CLI's


def test_a_cli_tower_may_not_take_the_name_of_a_config_tower(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["deploy", *REQUIRED]
    argv[argv.index("clip_vision")] = "text"
    with pytest.raises(SystemExit):
        build_config(_parse(argv), {})
    assert "config/default.yaml already has a tower 'text'" in capsys.readouterr().err


def test_an_environment_with_an_api_takes_a_model_only_cli_tower() -> None:
    """config/dev.yaml has an API: with the one-tower config the seed default (model only) was
    refused ("no tower has a real-time endpoint for the API"), which no flag could fix."""
    repo = Path(__file__).resolve().parents[2]
    name, config, _ = build_config(
        _parse(["synth", *REQUIRED, "--config", str(repo / "config" / "dev.yaml")]), {}
    )
    assert config.api.enabled and not config.towers[name].deploy_endpoint


def test_model_entry_point_names_the_entry_module_and_its_folder() -> None:
    """The seed's MODEL_ENTRY_POINT was silently ignored."""
    _, tower = _tower(
        ["deploy", *REQUIRED], {"MODEL_ENTRY_POINT": "tests/stacks/fixtures/custom_code/serve.py"}
    )
    assert (tower["entry_module"], tower["code_dir"]) == (
        "serve.py",
        "tests/stacks/fixtures/custom_code",
    )
    _, flagged = _tower(
        [
            "deploy",
            *REQUIRED,
            "--usr_code_dir",
            "tests/stacks/fixtures/custom_code",
            "--model_entry_point",
            "serve.py",
        ]
    )
    assert (flagged["entry_module"], flagged["code_dir"]) == (
        "serve.py",
        "tests/stacks/fixtures/custom_code",
    )


def test_require_approval_never_for_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(deploy, "GENERATED_DIR", tmp_path)

    def run_cdk(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr(deploy, "run_cdk", run_cdk)
    args = _parse(["deploy", *REQUIRED, "--require-approval", "never"])
    assert args.func(args, {}) == 0
    (argv,) = calls
    assert argv[argv.index("--require-approval") + 1] == "never"


def test_synth_drops_the_cli_noise_and_deploy_keeps_the_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``main.py synth`` printed "Supply a stack id ..." and the flag count; ``deploy`` must stay
    attached to the terminal for its progress and approval prompt."""
    used: list[str] = []
    monkeypatch.setattr(deploy, "GENERATED_DIR", tmp_path)
    monkeypatch.setattr(deploy, "run_cdk", lambda argv: used.append("terminal") or 0)  # type: ignore[func-returns-value]
    monkeypatch.setattr(deploy, "quiet_run_cdk", lambda argv: used.append("quiet") or 0)  # type: ignore[func-returns-value]
    for verb in ("synth", "deploy"):
        args = _parse([verb, *REQUIRED])
        assert args.func(args, {}) == 0
    assert used == ["quiet", "terminal"]


def test_a_model_entry_point_that_is_not_a_python_file_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_config(_parse(["deploy", *REQUIRED]), {"MODEL_ENTRY_POINT": "model_code/vision"})
    assert (
        "--model_entry_point / MODEL_ENTRY_POINT 'model_code/vision' is not a Python file"
        in capsys.readouterr().err
    )
