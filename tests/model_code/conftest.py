"""Tiny CLIP / DistilBERT checkpoints built here, and the towers' handlers loaded on them.

Every model dir is laid out as the container sees it: ``<model_dir>/code/`` is a copy of
``model_code/<tower>/`` and the handler is the toolkit's ``HuggingFaceHandlerService``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from hf_towers.serving.handler_host import HandlerHost
from hf_towers.serving.toy_models import build_clip

REPO = Path(__file__).resolve().parents[2]

LoadTower = Callable[..., HandlerHost]


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("clip")
    return path, build_clip(path)


@pytest.fixture(scope="session")
def load_tower(tmp_path_factory: pytest.TempPathFactory, clip: tuple[Path, object]) -> LoadTower:
    """``load_tower(tower, env={...}, extra_code={name: source})`` -> a loaded HandlerHost."""

    def load(
        tower: str, env: dict[str, str] | None = None, extra_code: dict[str, str] | None = None
    ) -> HandlerHost:
        model_dir = tmp_path_factory.mktemp(f"{tower}-model")
        for entry in clip[0].iterdir():
            shutil.copy(entry, model_dir / entry.name)
        shutil.copytree(REPO / "model_code" / tower, model_dir / "code")
        for name, source in (extra_code or {}).items():
            (model_dir / "code" / name).write_text(source)
        host = HandlerHost(model_dir)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            host.load()
        return host

    return load
