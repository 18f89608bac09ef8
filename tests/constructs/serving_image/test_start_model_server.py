"""The serving image's launcher: workers per machine, batching registration, MMS config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_towers.constructs.serving_image import start_model_server as launcher

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("cpus", "gpus", "workers"),
    [
        (2, 0, 2),  # ml.c5.large: one single-threaded worker per vCPU
        (4, 0, 4),
        (96, 0, 8),  # capped: the rest are threads
        (1, 0, 1),
        (8, 1, 2),  # ml.g5.2xlarge: two per GPU
        (48, 4, 8),  # ml.g5.12xlarge
        (1, 1, 1),  # never more workers than CPUs
    ],
)
def test_workers_per_instance(cpus: int, gpus: int, workers: int) -> None:
    assert launcher.choose_workers(cpus, gpus) == workers


def test_threads_share_the_cpus() -> None:
    assert launcher.threads_per_worker(96, 8) == 12
    assert launcher.threads_per_worker(2, 2) == 1
    assert launcher.threads_per_worker(1, 2) == 1


def tower_dir(tmp_path: Path, source: str | None) -> Path:
    (tmp_path / "code").mkdir(parents=True)
    if source is not None:
        (tmp_path / "code" / "inference.py").write_text(source)
    return tmp_path


@pytest.mark.parametrize("tower", ["vision", "text"])
def test_the_towers_code_is_registered_with_batching(tmp_path: Path, tower: str) -> None:
    source = (REPO / "model_code" / tower / "inference.py").read_text()
    query = launcher.registration({}, tower_dir(tmp_path, source), 2, "")
    assert query["handler"] == "inference:handle"
    assert (query["batch_size"], query["max_batch_delay"]) == ("8", "5")
    assert (query["initial_workers"], query["url"]) == ("2", str(tmp_path))


def test_settings_and_the_baked_code_on_the_path(tmp_path: Path) -> None:
    baked = tmp_path / "baked"
    baked.mkdir()
    (baked / "inference.py").write_text((REPO / "model_code/text/inference.py").read_text())
    env = {"MODEL_SERVER_BATCH_SIZE": "16", "MODEL_SERVER_MAX_BATCH_DELAY_MS": "2"}
    query = launcher.registration(env, tower_dir(tmp_path / "m", None), 1, f"/nowhere:{baked}")
    assert (query["handler"], query["batch_size"], query["max_batch_delay"]) == (
        "inference:handle",
        "16",
        "2",
    )


def test_code_without_a_batch_handle_gets_the_toolkit_and_batch_one(tmp_path: Path) -> None:
    """The toolkit's handle answers only the first request: a batch would fail as a whole."""
    own = "def model_fn(model_dir):\n    return None\n"
    query = launcher.registration({}, tower_dir(tmp_path, own), 1, "")
    assert (query["handler"], query["batch_size"]) == (launcher.TOOLKIT_HANDLER, "1")
    assert launcher.registration({}, tower_dir(tmp_path / "x", None), 1, "")["batch_size"] == "1"


def test_a_bad_setting_stops_the_start_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="MODEL_SERVER_BATCH_SIZE='0'"):
        launcher.registration({"MODEL_SERVER_BATCH_SIZE": "0"}, tower_dir(tmp_path, ""), 1, "")
    with pytest.raises(SystemExit, match="port 40000"):
        launcher.start(tmp_path, 40000, {}, tmp_path)


def test_mms_config_loads_no_startup_model_and_listens_on_loopback() -> None:
    properties = launcher.mms_properties(8081, 2, 60, "-XX:-UseContainerSupport")
    lines = properties.splitlines()
    assert "load_models=" in lines  # else load_models=ALL registers every folder of the store
    assert "inference_address=http://127.0.0.1:8081" in lines
    assert "management_address=http://127.0.0.1:8081" in lines
    assert "decode_input_request=false" in lines
    assert "default_workers_per_model=2" in lines
