"""Entry safety rules: paths, kinds and links as every reader would extract them."""

from __future__ import annotations

import json
import tarfile

import pytest

from hf_towers.constructs.repack.runtime.handler.errors import StreamError
from hf_towers.constructs.repack.runtime.handler.tarscan import Member
from hf_towers.constructs.repack.runtime.handler.validate import Validator

F, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
Entry = tuple[str, bytes, str]


def member(name: str, kind: bytes = F, linkname: str = "", offset: int = 0) -> Member:
    return Member(name, linkname, kind, 0, 0o644, offset, b"")


def verdicts(entries: list[Entry], validator: Validator | None = None) -> list[str]:
    validator = validator or Validator()
    return [validator.check(member(n, k, t, offset=512 * i)) for i, (n, k, t) in enumerate(entries)]


def refusal(entries: list[Entry]) -> str:
    with pytest.raises(StreamError) as err:
        verdicts(entries)
    return str(err.value)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([("", F, "")], "entry '' at offset 0 has an empty name"),
        ([("a\0b", F, "")], "has a NUL byte in its name"),
        ([("caf\udce9", F, "")], "has a name that is not valid UTF-8"),
        ([("./", F, "")], "names the extraction folder itself but is not a directory"),
        ([("code", F, "")], "is a file named 'code': it must be a directory"),
        ([("f", F, ""), ("code", S, "f")], "is a symlink named 'code'"),
        ([("f", F, ""), ("./code", H, "f")], "is a hard-linked file named 'code'"),
        ([("a", F, ""), ("./a", F, "")], "entry './a' at offset 512 is the path of the earlier"),
        ([("d/a", F, ""), ("d//a", F, "")], "the earlier entry 'd/a' written differently"),
        ([("d", D, ""), ("./d/", D, "")], "the earlier entry 'd' written differently"),
        ([("x", F, ""), ("x/y", F, "")], "entry 'x/y' at offset 512 lies below 'x', which is a"),
        ([("x/y", F, ""), ("x", F, "")], "replaces the earlier directory 'x' with a file"),
        ([("x", D, ""), ("x", S, "y")], "replaces the earlier directory 'x' with a symlink"),
        ([("y", F, ""), ("x", S, "y"), ("x", F, "")], "replaces the earlier symlink 'x'"),
        ([("y", F, ""), ("x", S, "y"), ("x", S, "y")], "replaces the earlier symlink 'x'"),
        ([("f", F, ""), ("h", H, "f"), ("f", F, "")], "replaces the earlier hard-linked file"),
        ([("f", F, ""), ("h", H, "f"), ("h", F, "")], "replaces the earlier hard-linked file"),
        ([("d", D, ""), ("s", S, "d"), ("s/x", F, "")], "lies below the symlink 's'"),
        ([("d", D, ""), ("h", H, "d")], "is a hard link to the directory 'd'"),
        ([("f", F, ""), ("s", S, "f"), ("h", H, "s")], "is a hard link to the symlink 's'"),
        ([("f", F, ""), ("h", H, "f/")], "is a hard link to 'f/', not an earlier entry"),
        ([("d", D, ""), ("s", S, "d"), ("h", H, "s/f")], "is a hard link to 's/f', not an"),
        ([("s", S, "")], "is a symlink with an empty target"),
        ([("f", F, ""), ("l1", S, "f"), ("l2", S, "l1")], "goes through the earlier symlink 'l1'"),
        ([("a", S, "b"), ("b", S, "a")], "goes through the earlier symlink 'a'"),
        ([("a/l", S, "../b")], "is a symlink to '../b', which has '..': 7-Zip refuses"),
        ([("a/l", S, "../../b")], "is a symlink pointing outside the archive ('../../b')"),
    ],
)
def test_entries_readers_extract_differently_are_refused(
    entries: list[Entry], problem: str
) -> None:
    assert problem in refusal(entries)


def test_symlink_chain_is_refused_for_its_real_reason_not_as_outside() -> None:
    """Issue 11 section 5: ``l2 -> l1 -> f.bin`` was refused as 'pointing outside'."""
    message = refusal([("f.bin", F, ""), ("l1", S, "f.bin"), ("l2", S, "l1")])
    assert "outside" not in message
    assert "7-Zip refuses a link via another link" in message
    assert "put it before 'l1'" in message


@pytest.mark.parametrize(
    ("entries", "paths"),
    [
        ([("l2", S, "l1"), ("l1", S, "f.bin"), ("f.bin", F, "")], ["l2", "l1", "f.bin"]),
        ([("d", D, ""), ("d/f", F, ""), ("l", S, "d"), ("m", S, "./d/f")], ["d", "d/f", "l", "m"]),
        ([("f", F, ""), ("h", H, "./f"), ("h2", H, "h")], ["f", "h", "h2"]),
        ([("f", F, ""), ("f", F, "")], ["f", "f"]),
        ([("./", D, ""), (".", D, ""), ("./d/", D, ""), ("./d", D, "")], ["", "", "d", "d"]),
        (
            [("d/f", F, ""), ("d", D, ""), ("code/", D, ""), ("code/x", F, "")],
            ["d/f", "d", "code", "code/x"],
        ),
        ([("a\\b", F, ""), ("é", F, "")], ["a\\b", "é"]),
    ],
)
def test_entries_readers_agree_on_are_accepted(entries: list[Entry], paths: list[str]) -> None:
    assert verdicts(entries) == paths


def test_state_is_plain_json_and_resumes_with_the_same_verdicts() -> None:
    """Checkpointed across Lambda invocations as JSON: a restored validator judges alike."""
    first = [("d", D, ""), ("d/f", F, ""), ("l", S, "d/f"), ("h", H, "d/f"), ("x", F, "")]
    validator = Validator()
    verdicts(first, validator)
    state = json.loads(json.dumps(vars(validator)))
    assert state == vars(validator)
    restored = Validator()
    restored.__dict__.update(state)
    for later, problem in [
        (("./x", F, ""), "written differently"),
        (("l/y", F, ""), "lies below the symlink 'l'"),
        (("d/f", F, ""), "replaces the earlier hard-linked file"),
        (("m", S, "l"), "goes through the earlier symlink 'l'"),
    ]:
        with pytest.raises(StreamError, match=problem):
            verdicts([later], restored)
    assert verdicts([("x", F, "")], restored) == ["x"]
    assert restored.files == 3
