"""What every config model shares: one strict base class, the patterns several files use, and
one error formatter (each message names the file, the key path, the value and the fix)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from hf_towers.config.yaml_file import YamlFileError, read_yaml

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
"""Project, environment, tower and consumer names: lowercase, digits, '-', 2-32 chars."""
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$"
KMS_KEY_ARN_PATTERN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]{36}$"
ACCOUNT_PATTERN = r"^\d{12}$"


class Strict(BaseModel):
    """Unknown keys are errors; models are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def matching(pattern: str, fix: str) -> AfterValidator:
    """A string check whose error names the fix (pydantic's own message shows the regex)."""

    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise ValueError(fix)
        return value

    return AfterValidator(check)


HINTED_KINDS = frozenset(
    {
        "string_pattern_mismatch",
        "int_parsing",
        "greater_than_equal",
        "less_than_equal",
        "enum",
        "literal_error",
        "too_short",
        "string_type",
        "int_type",
        "dict_type",
        "list_type",
    }
)
"""pydantic error kinds whose own message (a regex, a type name) is replaced by the key's hint."""


def _lookup(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    current = data
    for part in loc:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def describe(source: str, data: Any, error: Mapping[str, Any], hints: Mapping[str, str]) -> str:
    """One line for one pydantic error: ``<source>: <key path> = <value>: <problem and fix>``."""
    loc: tuple[int | str, ...] = tuple(error["loc"])
    # pydantic appends a synthetic key for dict keys it validates; drop it for the path.
    loc = tuple(part for part in loc if part != "[key]")
    path = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{source}: {path}: unknown key: remove it or check its spelling (see README, 'Configuration')"
    if kind == "missing":
        return f"{source}: {path}: required key is missing: add it (see README, 'Configuration')"
    found, value = _lookup(data, loc)
    # Scalars and empty containers are shown; a whole mapping or list would drown the message.
    container = isinstance(value, (Mapping, list))
    shown = f" = {value!r}" if found and (not container or not value) else ""
    named = [str(p) for p in loc if isinstance(p, str)]
    hint = hints.get(named[-1]) if named else None
    message = str(error["msg"]).removeprefix("Value error, ")
    if hint and kind in HINTED_KINDS:
        message = hint
    return f"{source}: {path}{shown}: {message}"


def format_errors(
    title: str, source: str, data: Any, exc: ValidationError, hints: Mapping[str, str]
) -> str:
    """Every problem of ``exc`` at once, one line each, under ``title``."""
    lines = [describe(source, data, err, hints) for err in exc.errors()]
    return f"{title}:\n  " + "\n  ".join(lines)


M = TypeVar("M", bound=BaseModel)


def parse_file_data(
    model: type[M],
    data: Any,
    source: str,
    *,
    error: type[ValueError],
    title: str,
    keys: str,
    hints: Mapping[str, str],
) -> M:
    """Validate loaded YAML ``data`` as ``model``; ``error`` lists every problem at once."""
    if not isinstance(data, Mapping):
        raise error(
            f"{source}: the file must hold a mapping of keys ({keys}, ...), not {type(data).__name__}"
        )
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise error(format_errors(title, source, data, exc, hints)) from None


def load_file(path: Path, *, error: type[ValueError], what: str, example: str) -> Any:
    """The YAML data of a config file; unreadable files raise ``error`` with the fix."""
    try:
        return read_yaml(path, what=what, example=example)
    except YamlFileError as exc:
        raise error(str(exc)) from None
