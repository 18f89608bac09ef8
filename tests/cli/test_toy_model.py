"""``main.py toy-model``: a checkpoint to try ``serve`` with; never overwrites a folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hf_towers.cli import main


def test_writes_a_clip_checkpoint_that_loads_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import transformers

    out = tmp_path / "clip"
    assert main(["toy-model", "--kind", "clip", "--out", str(out)]) == 0
    assert "use it with serve --model_type vision|text" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file()
    model = transformers.CLIPModel.from_pretrained(out)
    assert model.config.projection_dim == 16


def test_a_folder_that_is_not_empty_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["toy-model", "--out", str(tmp_path)]) == 2
    assert "exists and is not an empty folder: pick a new folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["toy-model", "--out", "{tmp}/new"], "hf_towers.serving.toy_models"),
        (
            ["serve", "--model_type", "text", "--model_dir", "{tmp}"],
            "hf_towers.serving.local_server",
        ),
    ],
    ids=["toy-model", "serve"],
)
def test_without_the_inference_packages_the_one_command_to_run_is_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    module: str,
) -> None:
    """After ``make synth`` alone torch and the toolkit are not installed: ``serve`` used to end
    in ``No module named 'mms'``."""
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ModuleNotFoundError
    parent, _, name = module.rpartition(".")
    monkeypatch.delattr(sys.modules[parent], name, raising=False)  # `from parent import name`
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 3
    err = capsys.readouterr().err
    assert "needs the inference requirements" in err
    assert (
        "run `make test` once, or `.venv/bin/python -m pip install -r requirements-inference.txt`"
        in err
    )
