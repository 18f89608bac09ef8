"""The folder ``publish`` uploads: the model artifact's files, with the card as ``README.md``.

The artifact is a local checkpoint folder, a local ``model.tar.gz`` or an ``s3://`` one
(downloaded with your credentials). An archive is never trusted: it is extracted by
``hf_towers.serving.artifact.unpack_artifact`` with the repack handler's validator and the
tower's ``max_decompression_ratio``, exactly as ``main.py serve`` reads it. The files staged are
the ones ``HfApi.upload_folder`` would send: ``.git`` and ``.cache/huggingface`` are left out as
its default ignore patterns leave them out, an existing top-level ``README.md`` gives way to the
card, and links are followed only to regular files inside the folder (nothing outside it is
uploaded).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hf_towers.publish.registry import RegistryError, call_aws, split_s3

CARD_NAME = "README.md"


class FolderError(ValueError):
    """An artifact that cannot be published; the message names it and the fix."""


def _ignored(parts: tuple[str, ...]) -> bool:
    """huggingface_hub's DEFAULT_IGNORE_PATTERNS: ``.git`` and ``.cache/huggingface`` anywhere."""
    if ".git" in parts:
        return True
    return any(a == ".cache" and b == "huggingface" for a, b in itertools.pairwise(parts))


@contextmanager
def model_folder(
    location: str, what: str, *, max_ratio: float, s3: Callable[[], Any]
) -> Iterator[tuple[Path, bool]]:
    """Yield ``(folder, ours)``: the artifact as a folder, and whether it is a temporary
    extraction (removed afterwards) rather than the user's own folder. ``what`` names the flag or
    key the location came from; ``s3`` makes a boto3 S3 client when one is needed."""
    if location.startswith("s3://"):
        if location.endswith("/"):
            raise FolderError(
                f"{what} {location!r} is an S3 prefix (uncompressed model data): download it "
                "(aws s3 sync) and pass the folder with --model DIR"
            )
        try:
            bucket, key = split_s3(location)
        except RegistryError as exc:
            raise FolderError(f"{what}: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="hf-towers-publish-") as tmp:
            archive = Path(tmp) / "model.tar.gz"
            try:
                call_aws(
                    f"{what}: downloading {location}",
                    s3().download_file,
                    Bucket=bucket,
                    Key=key,
                    Filename=str(archive),
                )
            except RegistryError as exc:
                raise FolderError(str(exc)) from None
            yield _unpack(archive, Path(tmp), what, max_ratio), True
        return
    path = Path(location)
    if path.is_dir():
        yield path, False
    elif path.is_file():
        with tempfile.TemporaryDirectory(prefix="hf-towers-publish-") as tmp:
            yield _unpack(path, Path(tmp), what, max_ratio), True
    else:
        raise FolderError(
            f"{what} {location!r}: no such file or folder: pass the checkpoint folder, its "
            "model.tar.gz or an s3:// URI"
        )


def _unpack(archive: Path, workdir: Path, what: str, max_ratio: float) -> Path:
    from hf_towers.serving.artifact import unpack_artifact

    try:
        return unpack_artifact(archive, workdir, max_ratio=max_ratio)
    except ValueError as exc:  # the repack's reason: not gzip, '..' paths, ratio over the bound
        raise FolderError(
            f"{what}: {exc}; publish reads an archive with the repack's rules (the tower's "
            "max_decompression_ratio bounds it)"
        ) from None


def _entries(source: Path) -> Iterator[tuple[str, Path]]:
    """``(relative POSIX path, file to read)`` of every file to stage, sorted."""
    root = source.resolve()
    for current, dirs, files in os.walk(source):
        here = Path(current)
        base = here.relative_to(source).parts
        kept = []
        for name in sorted(dirs):
            rel = "/".join((*base, name))
            if _ignored((*base, name)):
                continue
            if (here / name).is_symlink():
                raise FolderError(
                    f"{source}: {rel} is a link to a folder: replace it with the folder itself "
                    "(publish follows links only to files)"
                )
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            parts = (*base, name)
            rel = "/".join(parts)
            if _ignored(parts):
                continue
            path = here / name
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise FolderError(
                        f"{source}: {rel} links to {target}, outside the folder: copy the file in "
                        "(cp -L) or remove the link (only what lies in the folder is uploaded)"
                    )
                if not target.is_file():
                    raise FolderError(
                        f"{source}: {rel} is a link to nothing usable ({target}): remove it"
                    )
                yield rel, target
            elif path.is_file():
                yield rel, path
            else:
                raise FolderError(
                    f"{source}: {rel} is not a regular file (a fifo, socket or device): remove it"
                )


def check_checkpoint(source: Path, *, needs_safetensors: bool) -> dict[str, Any]:
    """The checkpoint's ``config.json``; ``FolderError`` when the folder is not one the Hub
    (``from_pretrained``) and the towers (safetensors only) can load."""
    config = source / "config.json"
    if not config.is_file():
        raise FolderError(
            f"{source}: no config.json at the top of the model folder: publish the folder "
            "save_pretrained wrote (or its model.tar.gz), not a folder above or below it"
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FolderError(f"{config}: not a JSON model config ({exc})") from None
    if not isinstance(data, dict):
        raise FolderError(f"{config}: not a JSON object: is this a Hugging Face checkpoint?")
    if needs_safetensors and not any(source.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in source.iterdir())) or "nothing"
        raise FolderError(
            f"{source}: no *.safetensors weights (found {found}): the towers load safetensors "
            "only; save with save_pretrained(dir, safe_serialization=True)"
        )
    return data


def plan(source: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """The files to stage, as ``(relative POSIX path, file to read)`` sorted by path, and notes
    for the user."""
    files: list[tuple[str, Path]] = []
    notes: list[str] = []
    for rel, path in _entries(source):
        if rel == CARD_NAME:
            notes.append(f"the artifact's own {CARD_NAME} is replaced by the model card")
        else:
            files.append((rel, path))
    return sorted(files), notes


def stage(files: list[tuple[str, Path]], dest: Path, card: str, *, link: bool) -> int:
    """Write ``files`` (from ``plan``) and ``README.md`` (``card``) into the empty folder
    ``dest``; the bytes of the model's files.

    ``link``: hard-link files where possible (into a temporary staging folder, or out of a
    temporary extraction), else copy; the user's own files are copied into a folder they keep.
    """
    size = 0
    for rel, path in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
        else:
            shutil.copyfile(path, target)
        size += target.stat().st_size
    (dest / CARD_NAME).write_text(card, encoding="utf-8")
    return size
