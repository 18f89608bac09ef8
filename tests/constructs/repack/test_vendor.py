"""``vendor.py``: the repack function's code is ``runtime/`` plus the pinned zlib-ng wheel's files,
sha256-checked, staged the same way on every machine."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aws_cdk import FileSystem

from hf_towers.constructs.repack import vendor
from hf_towers.constructs.repack.vendor import RUNTIME, VendorError

SO = "zlib_ng/zlib_ng.cpython-314-x86_64-linux-gnu.so"
TAGS = {"python_tag": vendor.PYTHON_TAG, "machine": vendor.MACHINE}


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The downloaded cp314 wheel (``make function-wheels``), checked against the pin."""
    (pin,) = vendor.read_pins(vendor.REQUIREMENTS)
    return vendor.find_wheel(pin, vendor.WHEELS, **TAGS)


def tree(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Relative path -> (mode, content) of every file, and (mode, b"") of every folder."""
    out = {".": (folder.stat().st_mode & 0o777, b"")}
    for path in sorted(folder.rglob("*")):
        content = path.read_bytes() if path.is_file() else b""
        out[path.relative_to(folder).as_posix()] = (path.stat().st_mode & 0o777, content)
    return out


def test_one_pin_for_the_lambda_and_the_dev_venv() -> None:
    (pin,) = vendor.read_pins(vendor.REQUIREMENTS)
    assert (pin.name, pin.version) == ("zlib-ng", "1.1.0")
    assert pin.wheel_prefix == "zlib_ng-1.1.0-"
    assert len(pin.hashes) == 2  # the Lambda's cp314 wheel and the dev venv's cp311 one
    # The Makefile installs the dev venv's zlib-ng from this file (--require-hashes).
    assert importlib.metadata.version("zlib-ng") == pin.version
    makefile = (vendor.REPO / "Makefile").read_text()
    assert "--require-hashes -r $(FUNCTION_REQUIREMENTS)" in makefile
    assert "--python-version 3.14 --implementation cp --platform manylinux2014_x86_64" in makefile
    dev = (vendor.REPO / "requirements-dev.txt").read_text().splitlines()
    assert not [line for line in dev if line.startswith(("zlib-ng", "zlib_ng"))]  # no second pin


def test_the_staged_code_is_the_runtime_and_the_wheel(wheel: Path, tmp_path: Path) -> None:
    staged = vendor.stage(RUNTIME, vendor.REQUIREMENTS, vendor.WHEELS, root=tmp_path, **TAGS)
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    runtime = {
        p.relative_to(RUNTIME).as_posix()
        for p in RUNTIME.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        members = {name for name in archive.namelist() if not name.endswith("/")}
        so = archive.read(SO)
    assert files == runtime | members
    assert {"handler/index.py", SO, "zlib_ng/zlib-ng/LICENSE.md"} <= files
    assert "zlib_ng-1.1.0.dist-info/licenses/LICENSE" in files
    assert (staged / SO).read_bytes() == so
    # An x86-64 ELF shared object (e_machine 62), the Lambda's architecture.
    assert so[:4] == b"\x7fELF" and int.from_bytes(so[18:20], "little") == 62


def test_a_tampered_wheel_is_refused(wheel: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tampered = wheels / wheel.name
    shutil.copyfile(wheel, tampered)
    with zipfile.ZipFile(tampered, "a") as archive:  # still a valid wheel, one file more
        archive.writestr("zlib_ng/extra.py", "print('not from PyPI')\n")
    digest = hashlib.sha256(tampered.read_bytes()).hexdigest()
    with pytest.raises(VendorError) as caught:
        vendor.stage(RUNTIME, vendor.REQUIREMENTS, wheels, root=tmp_path / "out", **TAGS)
    assert str(caught.value) == (
        f"{tampered}: sha256 {digest} is not a hash that "
        "hf_towers/constructs/repack/requirements-function.txt pins for zlib-ng==1.1.0, so it is "
        "not the pinned wheel; remove it and run `make function-wheels`"
    )
    assert not (tmp_path / "out").exists()


def test_the_dev_venvs_wheel_does_not_fit_the_lambda(tmp_path: Path, wheel: Path) -> None:
    """A wheel of another Python (here renamed cp311) is not taken for the cp314 one."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    shutil.copyfile(wheel, wheels / wheel.name.replace("cp314", "cp311"))
    with pytest.raises(VendorError, match=r"^missing file .*zlib_ng-1\.1\.0-cp314-"):
        vendor.stage(RUNTIME, vendor.REQUIREMENTS, wheels, root=tmp_path, **TAGS)


def test_a_missing_wheel_names_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(VendorError) as caught:
        vendor.stage(RUNTIME, vendor.REQUIREMENTS, tmp_path / "none", root=tmp_path, **TAGS)
    assert str(caught.value) == (
        f"missing file {tmp_path}/none/zlib_ng-1.1.0-cp314-*manylinux*_x86_64*.whl: the "
        "zlib-ng==1.1.0 wheel that hf_towers/constructs/repack/requirements-function.txt pins "
        "for the repack function (Python 3.14, x86_64); fetch it with `make function-wheels` "
        "(make synth and make test run it on first use)"
    )


def test_the_default_location_is_the_venvs_function_wheels() -> None:
    """The Makefile's ``$(VENV)/function-wheels`` (gitignored with the venv), found from the
    interpreter, so a ref exported elsewhere (the risk report) finds it too."""
    assert Path(sys.prefix) / "function-wheels" == vendor.WHEELS
    assert "FUNCTION_WHEELS := $(VENV)/function-wheels" in (vendor.REPO / "Makefile").read_text()
    assert ".venv/" in (vendor.REPO / ".gitignore").read_text().split()


def test_a_bad_pin_line_is_a_message(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements-function.txt"
    requirements.write_text("# pins\nzlib-ng>=1.1 \\\n    --hash=sha256:abc\n")
    with pytest.raises(VendorError) as caught:
        vendor.read_pins(requirements)
    assert str(caught.value).startswith(
        f"{requirements}: logical line 2 'zlib-ng>=1.1      --hash=sha256:abc' is not "
        "'NAME==VERSION --hash=sha256:<64 hex> ...'"
    )
    requirements.write_text("zlib-ng==1.1.0\n")
    with pytest.raises(VendorError, match=r"logical line 1 'zlib-ng==1\.1\.0'"):
        vendor.read_pins(requirements)


def test_two_stagings_are_identical_whatever_the_umask_and_caches(
    wheel: Path, tmp_path: Path
) -> None:
    runtime = tmp_path / "runtime"
    shutil.copytree(RUNTIME, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    first = vendor.stage(runtime, vendor.REQUIREMENTS, vendor.WHEELS, root=tmp_path / "a", **TAGS)
    # The second machine: bytecode caches in the checkout, another umask, another temp dir.
    (runtime / "handler" / "__pycache__").mkdir()
    (runtime / "handler" / "__pycache__" / "index.cpython-311.pyc").write_bytes(b"cache")
    (runtime / "stray.pyc").write_bytes(b"cache")
    old = os.umask(0o077)
    try:
        second = vendor.stage(
            runtime, vendor.REQUIREMENTS, vendor.WHEELS, root=tmp_path / "b", **TAGS
        )
    finally:
        os.umask(old)
    assert first.name == second.name  # named by content
    assert tree(first) == tree(second)
    assert {mode for mode, _ in tree(first).values()} == {0o644, 0o755}
    # CDK's source fingerprint, which names the asset (the templates' S3Key).
    assert FileSystem.fingerprint(str(first)) == FileSystem.fingerprint(str(second))


def test_a_staging_with_other_content_is_not_reused(wheel: Path, tmp_path: Path) -> None:
    first = vendor.stage(RUNTIME, vendor.REQUIREMENTS, vendor.WHEELS, root=tmp_path, **TAGS)
    expected = tree(first)
    (first / "handler" / "index.py").write_text("raise SystemExit('planted')\n")
    again = vendor.stage(RUNTIME, vendor.REQUIREMENTS, vendor.WHEELS, root=tmp_path, **TAGS)
    assert again != first
    assert tree(again) == expected


def test_the_cp314_extension_falls_back_to_zlib_on_another_python(wheel: Path) -> None:
    """MiniStack runs the function on the host's Python 3.11: the shipped ``zlib_ng`` package is
    found first but its cp314 extension does not import, so the inflater and the stream path's
    deflate use the system zlib."""
    staged = vendor.function_code()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from handler import compressed, gzstream; import zlib_ng; "
        "print(gzstream.BACKEND, compressed._deflate.__name__, "
        "zlib_ng.__file__.startswith(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(staged)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["zlib", "zlib", "True"]  # inflate and deflate both fall back
