"""A tiny CLIP checkpoint (no code/) for the local server's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hf_towers.serving.toy_models import build_clip

    path = tmp_path_factory.mktemp("serving-clip")
    build_clip(path)
    return path
