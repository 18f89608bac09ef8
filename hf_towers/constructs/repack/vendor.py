"""The repack function's code: the ``runtime/`` folder plus the files of the wheels pinned in
``requirements-function.txt`` (zlib-ng, whose native inflate ``handler/gzstream.py`` uses).

Lambda puts the root of a ``.zip`` deployment package on ``sys.path`` (``/var/task``), so a
wheel's packages are extracted at the root, beside ``handler/``: "Runtime dependencies in Python",
https://docs.aws.amazon.com/lambda/latest/dg/python-package.html. The wheel's own
``*.dist-info/`` (its licenses, ``METADATA``, ``RECORD``) goes with it, as ``pip install --target``
would leave it; ``zlib_ng/zlib-ng/LICENSE.md`` is the bundled C library's license.

``function_code()`` stages that tree once per process into a folder under the temporary directory
named by its content, after checking each wheel's sha256 against the pin: every file is written
from bytes (mode 0644, folders 0755), bytecode caches are left out, so equal inputs give an equal
tree and an equal asset hash on every machine (CDK's source fingerprint hashes the relative paths
and contents of the files).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "runtime"
"""The ``handler`` package (stdlib + boto3; zlib-ng when its wheel loads)."""
REQUIREMENTS = HERE / "requirements-function.txt"
"""The one home of the function's pins (``name==version --hash=sha256:...``)."""
REPO = HERE.parents[2]
WHEELS = Path(sys.prefix) / "function-wheels"
"""Where ``make function-wheels`` (part of ``make synth`` and ``make test``) downloads them:
``.venv/function-wheels/``, in the venv that runs the app (``cdk.json``: ``.venv/bin/python``).
The interpreter's venv, not this checkout's: the risk report synthesizes a ref exported to a
temporary folder with the same interpreter (``hf_towers/risk/synth.py``)."""
FETCH_COMMAND = "make function-wheels"
PYTHON_TAG = "cp314"
"""The wheel tag of the functions' runtime, ``lambda_.Runtime.PYTHON_3_14`` (construct.py)."""
MACHINE = "x86_64"
"""The functions' architecture: Lambda's default, x86_64 (construct.py sets none)."""
JUNK_DIRS = frozenset({"__pycache__"})
JUNK_SUFFIXES = frozenset({".pyc"})
STAGING = "hf_towers_repack_function"
FILE_MODE = 0o644
DIR_MODE = 0o755


class VendorError(ValueError):
    """The function's pinned wheels cannot be staged: a message naming the file and the fix."""


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of the requirements file with its allowed sha256 digests."""

    name: str
    version: str
    hashes: frozenset[str]

    @property
    def wheel_prefix(self) -> str:
        """The start of its wheel files' names (PEP 427 escaping: ``zlib-ng`` -> ``zlib_ng``)."""
        return f"{re.sub(r'[-_.]+', '_', self.name).lower()}-{self.version}-"


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_HASH = re.compile(r"^--hash=sha256:([0-9a-f]{64})$")


def _repo_path(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def read_pins(requirements: Path) -> tuple[Pin, ...]:
    """The pins of ``requirements``: each line ``name==version --hash=sha256:<hex> ...`` (``\\``
    continues a line, ``#`` starts a comment), at least one hash each, as ``--require-hashes``
    wants them."""
    where = _repo_path(requirements)
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as exc:
        raise VendorError(f"{where}: cannot read the repack function's pins ({exc})") from None
    pins = []
    for number, line in enumerate(re.sub(r"\\\n", " ", text).splitlines(), start=1):
        tokens = re.sub(r"(^|\s)#.*$", "", line).split()
        if not tokens:
            continue
        pin, hashes = _PIN.match(tokens[0]), [_HASH.match(token) for token in tokens[1:]]
        if pin is None or not hashes or not all(hashes):
            raise VendorError(
                f"{where}: logical line {number} {line.strip()!r} is not "
                "'NAME==VERSION --hash=sha256:<64 hex> ...' (pin one exact version with the "
                "sha256 of each of its wheels, as pip's --require-hashes needs)"
            )
        pins.append(
            Pin(pin[1], pin[2], frozenset(match[1] for match in hashes if match is not None))
        )
    return tuple(pins)


def _fits(wheel: Path, python_tag: str, machine: str) -> bool:
    """Whether a wheel file name's tags (``name-version[-build]-py-abi-platform.whl``) include
    ``python_tag`` and a ``manylinux*_<machine>`` platform."""
    parts = wheel.name.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6):
        return False
    pythons, platforms = parts[-3].split("."), parts[-1].split(".")
    return python_tag in pythons and any(
        p.startswith("manylinux") and p.endswith(f"_{machine}") for p in platforms
    )


def find_wheel(pin: Pin, wheels: Path, *, python_tag: str, machine: str) -> Path:
    """The one downloaded wheel of ``pin`` for the functions' runtime, its sha256 checked."""
    pattern = f"{pin.wheel_prefix}{python_tag}-*manylinux*_{machine}*.whl"
    found = sorted(
        path
        for path in (wheels.glob(f"{pin.wheel_prefix}*.whl") if wheels.is_dir() else ())
        if _fits(path, python_tag, machine)
    )
    if not found:
        raise VendorError(
            f"missing file {_repo_path(wheels)}/{pattern}: the {pin.name}=={pin.version} wheel "
            f"that {_repo_path(REQUIREMENTS)} pins for the repack function (Python "
            f"{python_tag[2]}.{python_tag[3:]}, {machine}); fetch it with `{FETCH_COMMAND}` "
            "(make synth and make test run it on first use)"
        )
    if len(found) > 1:
        raise VendorError(
            f"{_repo_path(wheels)}: more than one {pin.name}=={pin.version} wheel fits the repack "
            f"function: {', '.join(path.name for path in found)}; remove the folder and run "
            f"`{FETCH_COMMAND}`"
        )
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    if digest not in pin.hashes:
        raise VendorError(
            f"{_repo_path(found[0])}: sha256 {digest} is not a hash that "
            f"{_repo_path(REQUIREMENTS)} pins for {pin.name}=={pin.version}, so it is not the "
            f"pinned wheel; remove it and run `{FETCH_COMMAND}`"
        )
    return found[0]


def _junk(relative: PurePosixPath) -> bool:
    return bool(JUNK_DIRS.intersection(relative.parts)) or relative.suffix in JUNK_SUFFIXES


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    """The files of ``wheel`` as ``pip install --target`` lays them out (purelib/platlib only)."""
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            relative = PurePosixPath(info.filename)
            if relative.is_absolute() or ".." in relative.parts:
                raise VendorError(f"{_repo_path(wheel)}: unsafe member name {info.filename!r}")
            if relative.parts[0].endswith(".data"):
                raise VendorError(
                    f"{_repo_path(wheel)}: {relative.parts[0]}/ (scripts, headers or data files) "
                    "cannot be laid out in a Lambda asset; pin a wheel without it"
                )
            if not _junk(relative):
                files[str(relative)] = archive.read(info)
    return files


def function_files(
    runtime: Path, requirements: Path, wheels: Path, *, python_tag: str, machine: str
) -> dict[str, bytes]:
    """Relative POSIX path -> content of the function's code: ``runtime`` (no bytecode caches)
    and every pinned wheel's files."""
    files = {
        path.relative_to(runtime).as_posix(): path.read_bytes()
        for path in sorted(runtime.rglob("*"))
        if path.is_file() and not _junk(PurePosixPath(path.relative_to(runtime).as_posix()))
    }
    for pin in read_pins(requirements):
        wheel = find_wheel(pin, wheels, python_tag=python_tag, machine=machine)
        for name, content in _wheel_files(wheel).items():
            if name in files:
                raise VendorError(
                    f"{_repo_path(wheel)}: {name} is also a file of {_repo_path(runtime)}; "
                    "rename the runtime's file"
                )
            files[name] = content
    return dict(sorted(files.items()))


def _write(folder: Path, files: Mapping[str, bytes]) -> None:
    folder.chmod(DIR_MODE)
    for name, content in files.items():
        path = folder / name
        for parent in reversed(path.relative_to(folder).parents[:-1]):
            (folder / parent).mkdir(mode=DIR_MODE, exist_ok=True)
            (folder / parent).chmod(DIR_MODE)
        path.write_bytes(content)
        path.chmod(FILE_MODE)


def _holds(folder: Path, files: Mapping[str, bytes]) -> bool:
    """Whether ``folder`` holds exactly ``files`` (a staging left by another process or user)."""
    present = {
        path.relative_to(folder).as_posix(): path for path in folder.rglob("*") if path.is_file()
    }
    return present.keys() == files.keys() and all(
        present[name].read_bytes() == content for name, content in files.items()
    )


def stage(
    runtime: Path,
    requirements: Path,
    wheels: Path,
    *,
    python_tag: str,
    machine: str,
    root: Path | None = None,
) -> Path:
    """A folder holding exactly ``function_files(...)``: ``<root>/<content digest>`` (root: the
    temporary directory's ``hf_towers_repack_function``), written through a partial folder and a
    rename, so concurrent synths never see half of it; reused when it already holds those files."""
    files = function_files(runtime, requirements, wheels, python_tag=python_tag, machine=machine)
    digest = hashlib.sha256()
    for name, content in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    base = root or Path(tempfile.gettempdir()) / STAGING
    out = base / digest.hexdigest()[:32]
    if out.is_dir() and _holds(out, files):
        return out
    base.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=base))
    _write(partial, files)
    try:
        partial.rename(out)
    except OSError:  # another process staged it first, or a folder of other content is there
        if out.is_dir() and _holds(out, files):
            shutil.rmtree(partial)
            return out
        return partial  # the same content under another name: the asset hash is the same
    return out


@cache
def _staged(runtime: Path, requirements: Path, wheels: Path, python_tag: str, machine: str) -> Path:
    return stage(runtime, requirements, wheels, python_tag=python_tag, machine=machine)


def function_code() -> Path:
    """The staged code of the repack functions (``RUNTIME`` + the wheels ``REQUIREMENTS`` pins,
    from ``WHEELS``), staged once per process; ``VendorError`` when a wheel is missing or is not
    the pinned one."""
    return _staged(RUNTIME, REQUIREMENTS, WHEELS, PYTHON_TAG, MACHINE)
