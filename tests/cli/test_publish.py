"""``main.py publish``: the dry run writes exactly the folder the upload sends, the upload goes
through an injected ``HfApi`` (no hub is contacted), metrics come from the registry (moto) or a
local report, and bad flags, a missing token and a used OUT_DIR get messages, not tracebacks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard, constants

from hf_towers.cli import main
from hf_towers.cli import publish as cli
from tests.publish.conftest import (
    aws_clients,
    checkpoint_members,
    register,
    write_archive,
    write_checkpoint,
)
from tests.publish.test_hub import FakeApi

SECRET = "hf_not_a_real_token_0123456789"
REPORT = {"retrieval_metrics": {"recall_at_1": {"value": 0.61}, "recall_at_5": {"value": 0.93}}}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return write_checkpoint(tmp_path / "checkpoint")


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return aws_clients(moto_endpoint, monkeypatch)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(REPORT))
    return path


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """The stand-in HfApi the CLI gets, with HF_TOKEN set; records the token it was made with."""
    fake = FakeApi()
    tokens: list[str] = []

    def make(token: str) -> FakeApi:
        tokens.append(token)
        return fake

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(cli, "hub_api", make)
    fake.tokens = tokens  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build an HfApi fails the test."""

    def refuse(token: str) -> Any:
        raise AssertionError("the hub must not be contacted")

    monkeypatch.setattr(cli, "hub_api", refuse)


def _publish(*argv: str) -> int:
    return main(["publish", "--tower", "vision", "--repo-id", "my-org/clip-retrieval", *argv])


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_dry_run_writes_the_folder_and_card_and_uploads_nothing(
    checkpoint: Path, report: Path, tmp_path: Path, no_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (checkpoint / ".git").mkdir()
    (checkpoint / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (checkpoint / "README.md").write_text("the old card")
    out = tmp_path / "out"
    code = _publish(
        "--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out),
        "--base-model", "openai/clip-vit-base-patch32", "--license", "apache-2.0",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "nothing was uploaded" in captured.out
    assert "README.md is replaced by the model card" in captured.err
    assert sorted(_tree(out)) == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
    assert (out / "model.safetensors").read_bytes() == (
        checkpoint / "model.safetensors"
    ).read_bytes()
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "openai/clip-vit-base-patch32"
    assert card.data.license == "apache-2.0"
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == {
        ("recall_at_1", 0.61),
        ("recall_at_5", 0.93),
    }
    # config/default.yaml's vision and text towers share the artifact: both endpoints are described
    assert "--endpoint-name hf-towers-dev-vision" in card.text
    assert "--endpoint-name hf-towers-dev-text" in card.text
    assert (checkpoint / "README.md").read_text() == "the old card"  # the source is only read


def test_the_upload_sends_exactly_what_the_dry_run_wrote(
    checkpoint: Path, report: Path, tmp_path: Path, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 0
    )
    assert api.calls == []
    assert _publish("--model", str(checkpoint), "--metrics", str(report), "--private") == 0
    captured = capsys.readouterr()
    assert [name for name, _ in api.calls] == ["create_repo", "repo_info", "upload_folder"]
    create, upload = api.calls[0][1], api.calls[2][1]
    assert (create["repo_id"], create["private"], create["repo_type"]) == (
        "my-org/clip-retrieval",
        True,
        "model",
    )
    assert upload["repo_id"] == "my-org/clip-retrieval"
    assert upload["commit_message"] == "Publish clip-retrieval (hf-towers-dev tower vision)"
    assert upload["files"] == sorted(_tree(out))
    assert api.tokens == [SECRET]  # type: ignore[attr-defined]
    assert (
        "published 3 files and README.md to https://huggingface.co/my-org/clip-retrieval (private)"
        in captured.out
    )
    assert SECRET not in captured.out + captured.err
    # the staging folder was temporary
    assert not Path(upload["folder_path"]).exists()


def test_the_staged_card_is_the_dry_runs(
    checkpoint: Path, report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, bytes] = {}

    class Capturing(FakeApi):
        def upload_folder(self, **kwargs: Any) -> Any:
            seen.update(_tree(Path(kwargs["folder_path"])))
            return super().upload_folder(**kwargs)

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(cli, "hub_api", lambda token: Capturing())
    argv = ("--model", str(checkpoint), "--metrics", str(report), "--commit-message", "v2")
    assert _publish(*argv) == 0
    assert _publish(*argv, "--dry-run", str(tmp_path / "out")) == 0
    assert seen == _tree(tmp_path / "out")


def test_without_a_token_it_says_how_to_set_one(
    checkpoint: Path, report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    no_hub: None, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    assert _publish("--model", str(checkpoint), "--metrics", str(report)) == 3
    err = capsys.readouterr().err
    assert "publish: no Hugging Face token found: set HF_TOKEN" in err
    assert "`hf auth login`" in err and "--dry-run OUT_DIR needs no token" in err


def test_a_used_out_dir_is_left_alone(
    checkpoint: Path, report: Path, tmp_path: Path, no_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 2
    )
    assert (
        f"publish: --dry-run {out} exists and is not an empty folder: pick a new or empty folder "
        "(nothing is overwritten)" in capsys.readouterr().err
    )
    assert _tree(out) == {"mine.txt": b"keep me"}
    assert (
        _publish(
            "--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out / "mine.txt")
        )
        == 2
    )


def test_an_empty_out_dir_is_used(
    checkpoint: Path, report: Path, tmp_path: Path, no_hub: None
) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 0
    )
    assert (out / "README.md").is_file()


def test_out_dir_inside_the_model_folder_is_refused(
    checkpoint: Path, report: Path, no_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = checkpoint / "publish"
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 2
    )
    assert "is inside the model folder" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--repo-id", "clip"],
            "argument --repo-id: 'clip' is not a Hub repository id: give namespace/name",
        ),
        (["--repo-id", "a/b/c"], "argument --repo-id: 'a/b/c' is not a Hub repository id"),
        (
            ["--license", "Apache 2.0"],
            "argument --license: 'Apache 2.0' is not a Hub license id: use a lowercase id",
        ),
        (["--base-model", "not an id"], "argument --base-model: 'not an id' is not a Hub id"),
        (
            ["--model-package-arn", "arn:x"],
            "argument --model-package-arn: not allowed with argument --metrics",
        ),
    ],
)
def test_bad_flags_name_the_flag_the_value_and_the_fix(
    report: Path, argv: list[str], expected: str, no_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _publish("--metrics", str(report), *argv)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_metrics_or_a_package_is_required(no_hub: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _publish()
    assert (
        "one of the arguments --model-package-arn --metrics is required" in capsys.readouterr().err
    )


def test_an_unknown_tower_and_a_bad_config_are_messages(
    report: Path, tmp_path: Path, no_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["publish", "--repo-id", "o/n", "--metrics", str(report)]
    assert main([*argv, "--tower", "nope"]) == 2
    assert (
        "publish: --tower 'nope' is not a tower of config/default.yaml (its towers: vision, text, qa): "
        "pick one of those" in capsys.readouterr().err
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: dev\nregion: us-east-9\ntowers: {}\n")
    assert main([*argv, "--tower", "vision", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"publish: --config {bad}: " in err and "region" in err and "Traceback" not in err


def test_a_bad_report_or_artifact_is_a_message(
    checkpoint: Path, tmp_path: Path, no_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "evaluation.json"
    empty.write_text('{"passed": true}')
    assert (
        _publish(
            "--model", str(checkpoint), "--metrics", str(empty), "--dry-run", str(tmp_path / "o")
        )
        == 2
    )
    assert "no metrics found" in capsys.readouterr().err
    hostile = write_archive(tmp_path / "model.tar.gz", {"../../etc/cron.d/x": b"* * * * * boom"})
    out = tmp_path / "out"
    report = tmp_path / "r.json"
    report.write_text('{"recall_at_1": 0.5}')
    assert _publish("--model", str(hostile), "--metrics", str(report), "--dry-run", str(out)) == 2
    err = capsys.readouterr().err
    assert "--model: " in err and "is not a usable model.tar.gz" in err
    assert not out.exists()
    (checkpoint / "model.safetensors").unlink()
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 2
    )
    assert "no *.safetensors weights" in capsys.readouterr().err


def test_the_towers_model_path_is_the_default_artifact(
    tmp_path: Path, report: Path, no_hub: None
) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", checkpoint_members())
    config = tmp_path / "env.yaml"
    config.write_text(
        "environment: staging\nregion: eu-west-1\napi:\n  enabled: true\ntowers:\n"
        f"  search:\n    kind: text\n    model_path: {archive}\n    instance_type: ml.m5.xlarge\n"
    )
    out = tmp_path / "out"
    argv = ["publish", "--config", str(config), "--tower", "search", "--repo-id", "o/n"]
    assert main([*argv, "--metrics", str(report), "--dry-run", str(out)]) == 0
    assert sorted(_tree(out)) == [
        "README.md",
        "code/inference.py",
        "config.json",
        "model.safetensors",
    ]
    text = (out / "README.md").read_text()
    assert "--region eu-west-1 --endpoint-name hf-towers-staging-search" in text
    assert "`POST <ApiUrl>/towers/search/invocations`" in text


def test_a_registered_version_gives_metrics_artifact_and_base_model(
    aws: dict[str, Any], tmp_path: Path, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", checkpoint_members())
    s3 = aws["s3"]
    if "publish-tests" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="publish-tests")
    s3.upload_file(str(archive), "publish-tests", "cli/v3/model.tar.gz")
    arn = register(
        aws,
        report=json.dumps(REPORT).encode(),
        model_data_url="s3://publish-tests/cli/v3/model.tar.gz",
        metadata={"base_model": "openai/clip-vit-base-patch32", "training_data": "shop photos"},
    )
    out = tmp_path / "out"
    assert _publish("--model-package-arn", arn, "--dry-run", str(out)) == 0, capsys.readouterr().err
    assert sorted(_tree(out)) == [
        "README.md",
        "code/inference.py",
        "config.json",
        "model.safetensors",
    ]
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "openai/clip-vit-base-patch32"
    assert {r.metric_value for r in card.data.eval_results} == {0.61, 0.93}
    assert arn in card.text and "shop photos" in card.text
    assert api.calls == []
    assert _publish("--model-package-arn", arn) == 0
    group = arn.split("/")[-2]
    assert (
        api.calls[2][1]["commit_message"]
        == f"Publish clip-retrieval (model package {group} version 1)"
    )


def test_an_unapproved_version_is_not_published(
    aws: dict[str, Any], tmp_path: Path, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = register(aws, report=json.dumps(REPORT).encode(), status="Rejected")
    assert _publish("--model-package-arn", arn) == 2
    assert "is Rejected, not Approved" in capsys.readouterr().err
    assert api.calls == []


def test_the_hubs_refusal_is_exit_1(
    checkpoint: Path,
    report: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(cli, "hub_api", lambda token: FakeApi(fail=403))
    assert _publish("--model", str(checkpoint), "--metrics", str(report)) == 1
    err = capsys.readouterr().err
    assert "the Hub refused the token for my-org/clip-retrieval (403)" in err
    assert SECRET not in err


def test_a_real_toy_clip_round_trips_through_the_dry_run(
    tmp_path: Path, report: Path, no_hub: None
) -> None:
    import transformers

    hf: Any = transformers  # partial annotations
    assert main(["toy-model", "--kind", "clip", "--out", str(tmp_path / "clip")]) == 0
    out = tmp_path / "out"
    assert (
        _publish("--model", str(tmp_path / "clip"), "--metrics", str(report), "--dry-run", str(out))
        == 0
    )
    model = hf.CLIPModel.from_pretrained(out)  # what the Hub's users will run
    assert model.config.projection_dim == 16
    assert hf.CLIPProcessor.from_pretrained(out) is not None
    assert "embeddings of 16 float32 values" in (out / "README.md").read_text()


def test_publish_is_a_command_of_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["publish", "--help"])
    assert info.value.code == 0
    assert "--dry-run OUT_DIR" in capsys.readouterr().out


def test_without_huggingface_hub_the_one_command_to_run_is_named(
    checkpoint: Path, report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """huggingface_hub comes with the inference requirements, not with ``make synth``."""
    import hf_towers.publish

    monkeypatch.setitem(sys.modules, "hf_towers.publish.card", None)
    monkeypatch.delattr(hf_towers.publish, "card", raising=False)
    out = tmp_path / "out"
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 3
    )
    err = capsys.readouterr().err
    assert "publish: needs the inference requirements" in err
    assert "requirements-inference.txt" in err
    assert not out.exists()


@pytest.mark.parametrize("existing", [False, True], ids=["new OUT_DIR", "empty OUT_DIR"])
def test_a_failed_dry_run_leaves_out_dir_as_it_found_it(
    checkpoint: Path, report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    no_hub: None, capsys: pytest.CaptureFixture[str], existing: bool,
) -> None:  # fmt: skip
    import shutil

    real = shutil.copyfile
    calls: list[str] = []

    def disk_full(src: Any, dst: Any, **kwargs: Any) -> Any:
        calls.append(str(dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    assert (
        _publish("--model", str(checkpoint), "--metrics", str(report), "--dry-run", str(out)) == 2
    )
    assert "No space left on device" in capsys.readouterr().err
    assert (out.is_dir() and not any(out.iterdir())) if existing else not out.exists()
