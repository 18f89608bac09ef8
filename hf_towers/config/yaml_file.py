"""Reading a config file the user owns: every way it can be unreadable is a message, not a
traceback, and YAML's silent "the last duplicate key wins" is an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1024 * 1024
"""Config files are a few KiB; anything over 1 MiB is not a config file."""


class YamlFileError(ValueError):
    """The file cannot be read as YAML; the message names the file, the problem and the fix."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}): "
                    "YAML would silently keep the last one; keep one of them",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, *, what: str, example: str) -> Any:
    """The YAML data of ``path``, a ``what`` (e.g. "config file"); ``example`` is an existing
    file to suggest."""
    if path.is_dir():
        raise YamlFileError(f"{path}: is a folder, not a {what}: pass a file, e.g. {example}")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise YamlFileError(
            f"{path}: no such {what}: pass an existing file, e.g. {example}"
        ) from None
    except OSError as exc:
        raise YamlFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if size > MAX_BYTES:
        raise YamlFileError(
            f"{path}: {size} bytes is too large for a {what} (at most {MAX_BYTES}): "
            "is this the right file?"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if b"\0" in raw:
        raise YamlFileError(
            f"{path}: holds binary data (NUL bytes), not YAML text: is this the right file?"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(
            f"{path}: byte {exc.start} is not UTF-8 ({raw[exc.start : exc.start + 1]!r}): save the "
            "file as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{path}: not valid YAML: {exc}") from None
