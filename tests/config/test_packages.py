"""``model_package`` towers: the key's rules, and the resolved file config loading binds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hf_towers.config import ConfigError, load_config, parse_config
from hf_towers.config.packages import (
    RESOLVED_DIR,
    ModelPackage,
    ResolvedPackage,
    ResolvedPackages,
    resolved_path,
)
from tests.synth_helpers import REPO, default_data

GROUP = "hf-towers-dual-encoder"
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/7"


def _entry(**changes: Any) -> dict[str, Any]:
    entry = {
        "group": GROUP,
        "version": 7,
        "requested": "latest-approved",
        "model_package_arn": ARN,
        "model_data_url": f"s3://example-ml-registry/{GROUP}/7/model.tar.gz",
        "approval_status": "Approved",
        "resolved_at": "2026-12-01T12:00:00Z",
    }
    entry.update(changes)
    return entry


def _data(**package: Any) -> dict[str, Any]:
    data = default_data()
    text = data["towers"]["text"]
    del text["model_uri"], text["model_version"]
    text["model_package"] = {"group": GROUP, **package}
    data["towers"] = {"text": text}
    return data


def _write(directory: Path, environment: str = "dev", **entry: Any) -> Path:
    path = resolved_path(environment, directory)
    path.write_text(json.dumps({"environment": environment, "towers": {"text": _entry(**entry)}}))
    return path


def test_a_resolved_tower_carries_its_entry(tmp_path: Path) -> None:
    _write(tmp_path)
    config = parse_config(_data(), "config/dev.yaml", resolved_dir=tmp_path)
    package = config.towers["text"].model_package
    assert package is not None
    assert package.version == "latest-approved"
    assert package.resolved.version == 7
    assert package.resolved.model_package_arn == ARN


def test_a_pinned_version_needs_an_entry_of_that_version(tmp_path: Path) -> None:
    _write(tmp_path, requested=7)
    config = parse_config(_data(version=7), "config/dev.yaml", resolved_dir=tmp_path)
    assert config.towers["text"].model_package is not None
    _write(tmp_path, requested=7)
    with pytest.raises(ConfigError) as info:
        parse_config(_data(version=8), "config/dev.yaml", resolved_dir=tmp_path)
    assert "towers.text.model_package = hf-towers-dual-encoder/8: was resolved for version 7" in (
        str(info.value)
    )


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (None, "has no entry in the resolved file"),
        ({"group": "other-group"}, "was resolved for group 'other-group'"),
        ({"requested": 3, "version": 3}, "was resolved for version 3, not 'latest-approved'"),
    ],
)
def test_an_unresolved_tower_fails_with_the_command_to_run(
    tmp_path: Path, entry: dict[str, Any] | None, why: str
) -> None:
    if entry is not None:
        _write(tmp_path, **entry)
    with pytest.raises(ConfigError) as info:
        parse_config(_data(), "config/dev.yaml", resolved_dir=tmp_path)
    message = str(info.value)
    assert f"config/dev.yaml: towers.text.model_package = {GROUP}/latest-approved: {why}" in message
    assert str(resolved_path("dev", tmp_path)) in message
    assert "run `hf-towers resolve-packages --config config/dev.yaml`" in message
    assert "Traceback" not in message


def test_resolve_packages_itself_loads_unresolved_configs(tmp_path: Path) -> None:
    config = parse_config(_data(), "config/dev.yaml", resolved_dir=tmp_path, require_resolved=False)
    assert config.towers["text"].model_package is not None
    with pytest.raises(ValueError, match="is not resolved"):
        _ = config.towers["text"].model_package.resolved


def test_a_resolved_file_for_another_environment_is_refused(tmp_path: Path) -> None:
    path = resolved_path("dev", tmp_path)
    path.write_text(json.dumps({"environment": "prod", "towers": {"text": _entry()}}))
    with pytest.raises(ConfigError, match=r"environment = 'prod': the file is for another"):
        parse_config(_data(), "config/dev.yaml", resolved_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not a readable JSON file"),
        (
            json.dumps(
                {"environment": "dev", "towers": {"text": _entry(approval_status="Rejected")}}
            ),
            "towers.text.approval_status = 'Rejected'",
        ),
        (
            json.dumps(
                {"environment": "dev", "towers": {"text": _entry(model_data_url="http://x")}}
            ),
            "towers.text.model_data_url = 'http://x'",
        ),
    ],
)
def test_a_broken_resolved_file_says_to_resolve_again(
    tmp_path: Path, text: str, expected: str
) -> None:
    resolved_path("dev", tmp_path).write_text(text)
    with pytest.raises(ConfigError) as info:
        parse_config(_data(), "config/dev.yaml", resolved_dir=tmp_path)
    assert expected in str(info.value)
    assert "resolve-packages" in str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"model_uri": "s3://example-ml-artifacts/x/model.tar.gz"},
            "give exactly one of model_uri (s3://...), model_path (a local file or folder) and "
            "model_package",
        ),
        ({"model_version": "2"}, "model_version is the package version for a model_package tower"),
        ({"compressed_model_data": False}, "a model package's ModelDataUrl is one model.tar.gz"),
        (
            {"model_package": {"group": "bad_group!"}},
            "towers.text.model_package.group = 'bad_group!': must be a Model Package Group name",
        ),
        (
            {"model_package": {"group": GROUP, "version": 0}},
            "towers.text.model_package.version",
        ),
        (
            {"model_package": {"group": GROUP, "version": "newest"}},
            "towers.text.model_package.version",
        ),
        (
            {"model_package": {"group": GROUP, "stage": "x"}},
            "towers.text.model_package.stage: unknown key",
        ),
    ],
)
def test_model_package_rules(change: dict[str, Any], expected: str) -> None:
    data = _data()
    data["towers"]["text"].update(change)
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config/bad.yaml")
    assert expected in str(info.value)
    assert "config/bad.yaml" in str(info.value)


def test_the_committed_example_and_its_resolved_file_agree() -> None:
    config = load_config(REPO / "config" / "examples" / "registry.yaml")
    path = resolved_path(config.environment)
    assert path.parent == RESOLVED_DIR == REPO / "config" / "resolved"
    resolved = ResolvedPackages.model_validate_json(path.read_text())
    assert path.read_text() == resolved.dumps()  # the format resolve-packages writes
    for name, tower in config.towers.items():
        assert tower.model_package is not None
        assert tower.model_package.resolved == resolved.towers[name]


def test_binding_keeps_the_reference_and_equality_of_the_rest() -> None:
    ref = ModelPackage(group=GROUP)
    entry = ResolvedPackage.model_validate(_entry())
    bound = ref.bound(entry)
    assert (bound.group, bound.version) == (ref.group, ref.version)
    assert bound.resolved is entry
    assert ref.check_entry(entry) is None
