"""``hf_towers.publish.folder``: what is staged for upload (the ignore patterns of
``upload_folder``, links only to files inside the folder), and archives read with the repack's
validated extraction, never trusted."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hf_towers.publish.folder import FolderError, check_checkpoint, model_folder, plan, stage
from tests.publish.conftest import checkpoint_members, write_archive


def _no_s3() -> Any:
    raise AssertionError("no S3 client is needed here")


def test_plan_leaves_out_what_upload_folder_ignores_and_the_old_readme(checkpoint: Path) -> None:
    (checkpoint / ".git").mkdir()
    (checkpoint / ".git" / "config").write_text("[core]")
    (checkpoint / ".cache" / "huggingface").mkdir(parents=True)
    (checkpoint / ".cache" / "huggingface" / "download.lock").write_text("")
    (checkpoint / ".cache" / "kept.txt").write_text("kept")
    (checkpoint / "README.md").write_text("old card")
    (checkpoint / "code").mkdir()
    (checkpoint / "code" / "inference.py").write_text("# code")
    files, notes = plan(checkpoint)
    assert [rel for rel, _ in files] == [
        ".cache/kept.txt",
        "code/inference.py",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert notes == ["the artifact's own README.md is replaced by the model card"]


def test_links_are_followed_only_to_files_inside_the_folder(
    checkpoint: Path, tmp_path: Path
) -> None:
    (checkpoint / "alias.json").symlink_to("config.json")
    files, _ = plan(checkpoint)
    assert dict(files)["alias.json"] == (checkpoint / "config.json").resolve()

    secret = tmp_path / "credentials"
    secret.write_text("do not upload")
    (checkpoint / "leak.txt").symlink_to(secret)
    with pytest.raises(FolderError, match=r"leak.txt links to .*credentials, outside the folder"):
        plan(checkpoint)
    (checkpoint / "leak.txt").unlink()

    (checkpoint / "dangling").symlink_to(checkpoint / "gone")
    with pytest.raises(FolderError, match="dangling is a link to nothing usable"):
        plan(checkpoint)
    (checkpoint / "dangling").unlink()

    (checkpoint / "sub").symlink_to(tmp_path)
    with pytest.raises(FolderError, match="sub is a link to a folder"):
        plan(checkpoint)


def test_special_files_are_refused(checkpoint: Path) -> None:
    os.mkfifo(checkpoint / "pipe")
    with pytest.raises(FolderError, match="pipe is not a regular file"):
        plan(checkpoint)


def test_stage_copies_the_users_files_and_writes_the_card(checkpoint: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    files, _ = plan(checkpoint)
    size = stage(files, dest, "---\nlicense: mit\n---\n# card\n", link=False)
    assert sorted(p.name for p in dest.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert size == sum((checkpoint / rel).stat().st_size for rel, _ in files)
    assert (dest / "README.md").read_text().startswith("---\nlicense: mit")
    # copies, not links: editing the staged folder leaves the user's checkpoint as it was
    assert (dest / "config.json").stat().st_ino != (checkpoint / "config.json").stat().st_ino


def test_check_checkpoint_wants_config_json_and_safetensors_for_towers(checkpoint: Path) -> None:
    assert check_checkpoint(checkpoint, needs_safetensors=True)["model_type"] == "clip"
    (checkpoint / "model.safetensors").rename(checkpoint / "pytorch_model.bin")
    with pytest.raises(FolderError, match=r"no \*.safetensors weights .*safe_serialization=True"):
        check_checkpoint(checkpoint, needs_safetensors=True)
    assert check_checkpoint(checkpoint, needs_safetensors=False)["model_type"] == "clip"
    (checkpoint / "config.json").unlink()
    with pytest.raises(FolderError, match=r"no config.json at the top of the model folder"):
        check_checkpoint(checkpoint, needs_safetensors=False)


def test_a_local_archive_is_extracted_with_the_repacks_rules(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", checkpoint_members())
    with model_folder(str(archive), "--model", max_ratio=100, s3=_no_s3) as (folder, ours):
        assert ours
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
            "code/inference.py",
            "config.json",
            "model.safetensors",
        ]
    assert not folder.exists()  # the temporary extraction is gone
    assert archive.exists()


def test_a_hostile_archive_is_refused_with_the_repacks_reason(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"../escape.txt": b"x"})
    with (
        pytest.raises(FolderError, match=r"--model: .*model.tar.gz is not a usable model.tar.gz: "),
        model_folder(str(archive), "--model", max_ratio=100, s3=_no_s3),
    ):
        pass
    assert not (tmp_path / "escape.txt").exists()


def test_the_towers_decompression_ratio_bounds_the_archive(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"weights.bin": bytes(20 * 2**20)})
    with (
        pytest.raises(FolderError, match="decompression ratio exceeds the bound of 5"),
        model_folder(str(archive), "towers.vision.model_uri", max_ratio=5, s3=_no_s3),
    ):
        pass


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"not gzip")
    with (
        pytest.raises(FolderError, match=r"not a usable model.tar.gz"),
        model_folder(str(path), "--model", max_ratio=100, s3=_no_s3),
    ):
        pass
    with (
        pytest.raises(FolderError, match="no such file or folder"),
        model_folder(str(tmp_path / "missing"), "--model", max_ratio=100, s3=_no_s3),
    ):
        pass


def test_an_s3_artifact_is_downloaded_then_extracted(aws: dict[str, Any], tmp_path: Path) -> None:
    s3 = aws["s3"]
    if "publish-tests" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="publish-tests")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in checkpoint_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket="publish-tests", Key="folder-test/model.tar.gz", Body=raw.getvalue())
    uri = "s3://publish-tests/folder-test/model.tar.gz"
    with model_folder(uri, "--model", max_ratio=100, s3=lambda: s3) as (folder, ours):
        assert ours and (folder / "config.json").is_file()
    with (
        pytest.raises(FolderError, match=r"--model: downloading .*missing.tar.gz: 404"),
        model_folder("s3://publish-tests/missing.tar.gz", "--model", max_ratio=100, s3=lambda: s3),
    ):
        pass
    with (
        pytest.raises(FolderError, match=r"is an S3 prefix .*aws s3 sync"),
        model_folder("s3://publish-tests/weights/", "--model", max_ratio=100, s3=_no_s3),
    ):
        pass
