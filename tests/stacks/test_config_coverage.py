"""Every config key a user can write synthesizes clean: coverage derived from the schema.

The key list comes from the pydantic models, not from a hand-picked list: a new key, or a new
enum member, fails ``test_the_matrix_sets_every_key_and_every_choice`` until a config of
``config_matrix.py`` uses it, and that config is then synthesized through all four cdk-nag packs
and cfn-lint (the operations part by ``test_operations.py``, the rest here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, get_args

import pytest
from aws_cdk import App
from pydantic import BaseModel

from hf_towers.compliance import add_nag_packs
from hf_towers.config import EnvironmentConfig, parse_config
from hf_towers.environment import add_environment
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.tools.synth_check import check
from tests.stacks.config_matrix import examples, matrix
from tests.synth_helpers import assert_packs_pass, declared_acknowledgements, used_acknowledgements


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key path, annotation) of every leaf key; ``towers.<name>`` is ``towers`` (and
    ``shared_endpoints.<name>`` is ``shared_endpoints``)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        candidates = get_args(annotation) or (annotation,)
        if name in ("towers", "shared_endpoints") and model is EnvironmentConfig:
            candidates = get_args(annotation)[1:]  # dict[Name, Tower]: the values
        sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if sections:
            for section in sections:
                yield from _leaves(section, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", annotation


def _choices(annotation: Any) -> list[Any]:
    """The values a key can take when there are few: booleans and enums."""
    options = get_args(annotation) or (annotation,)
    for option in options:
        if option is bool:
            return [True, False]
        if isinstance(option, type) and issubclass(option, Enum):
            return [member.value for member in option]
    return []


def _values(data: Any, path: list[str]) -> Iterator[Any]:
    """Every value at ``path`` in ``data``; ``towers`` and ``shared_endpoints`` fan out over
    their names."""
    if not path:
        yield data
        return
    if not isinstance(data, dict):
        return
    head, rest = path[0], path[1:]
    if head not in data:
        return
    if head in ("towers", "shared_endpoints") and len(path) > 1:
        for entry in data[head].values():
            yield from _values(entry, rest)
        return
    yield from _values(data[head], rest)


def test_the_matrix_sets_every_key_and_every_choice() -> None:
    raw = list(matrix().values())
    effective = [parse_config(data, "matrix").model_dump(mode="json") for data in raw]
    unset, untried = [], []
    for path, annotation in _leaves(EnvironmentConfig):
        keys = path.split(".")
        if not any(True for data in raw for _ in _values(data, keys)):
            unset.append(path)
        seen = {json.dumps(v) for data in effective for v in _values(data, keys)}
        untried += [
            f"{path} = {choice!r}"
            for choice in _choices(annotation)
            if json.dumps(choice) not in seen
        ]
    assert unset == [], "keys no config of tests/stacks/config_matrix.py sets"
    assert untried == [], "values no config of tests/stacks/config_matrix.py uses"


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], set[Any]]:
    """The matrix's non-operations environments in one App, with the four nag packs."""
    outdir = tmp_path_factory.mktemp("coverage")
    app = App(context=FEATURE_FLAGS, outdir=str(outdir))
    for name, data in matrix().items():
        if name != "operations":  # synthesized with the packs by test_operations.py
            add_environment(app, parse_config(data, name))
    add_nag_packs(app)
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    return outdir, report, declared_acknowledgements(app)


def test_every_environment_of_the_matrix_passes_all_packs_and_cfn_lint(
    assembly: tuple[Path, dict[str, Any], set[Any]],
) -> None:
    outdir, report, declared = assembly
    assert_packs_pass(report)
    reports = check(outdir)
    # prod: artifacts, 7 towers, access, api, training; scratch: artifacts, 3 towers, access,
    # api, training; sharedcpu: artifacts, shared endpoint, 3 towers, access, api; each
    # example: artifacts, a stack per tower, access (and training if on, a shared stack per
    # shared endpoint)
    assert len(reports) == 18 + 7 + sum(
        2
        + len(data["towers"])
        + bool((data.get("training") or {}).get("enabled"))
        + len(data.get("shared_endpoints") or {})
        for data in examples().values()
    )
    assert len(examples()) == 9
    assert [r.name for r in reports if not r.ok] == []
    assert declared <= used_acknowledgements(report)
