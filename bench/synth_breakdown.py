"""Where `make synth` spends its time: one figure per part, each measured on its own.

Usage: .venv/bin/python bench/synth_breakdown.py [--config config/default.yaml]
(`make bench-synth` prints it after the end-to-end runs.)

Parts, in the order `make synth` meets them:
- Python start (``python -c pass``);
- imports of the app (``python -X importtime``), by package; and for reference what
  ``sagemaker.core.image_uris`` would add (the offline lookup in ``hf_towers/images.py`` avoids it);
- the app's steps, timed inside one run of the app as ``make synth`` starts it (the CLI's context):
  ``App()``, the pydantic config, image URIs, the construct tree (stacks, nag packs registered), and
  ``app.synth()`` split by CDK's own performance counters (``CDK_PERF_COUNTERS_FILE``): writing
  the assembly, the four nag packs, CDK's built-in CloudFormation validation (the same run with
  ``CDK_VALIDATION=false``; the difference), and the CPU time of the jsii kernel (Node);
- the CDK CLI's own cost (``cdk synth`` of an app that writes an empty assembly): no longer paid;
- cfn-lint: import, loading its rules, each template, all templates one after another;
- `make synth` itself (``python -m hf_towers.tools.synth_check``), once.

On a shared machine each figure carries the load of the moment: compare the parts of one run,
and time end to end with ``bench/synth_time.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hf_towers.tools.cdk_cli import app_context, cdk_command, cdk_environment  # noqa: E402

APP_IMPORTS = (
    "import aws_cdk, cdk_nag, constructs, pydantic, yaml, botocore;"
    "import hf_towers.compliance, hf_towers.config, hf_towers.environment, hf_towers.images"
)
IMPORT_GROUPS = ("aws_cdk", "cdk_nag", "constructs", "pydantic", "yaml", "botocore", "hf_towers")

PROBE = r"""
import json, os, sys, time
from pathlib import Path
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
sys.path.insert(0, os.getcwd())
from aws_cdk import App
from hf_towers.compliance import add_nag_packs
from hf_towers.config import load_config
from hf_towers.environment import add_environment
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.images import resolve_image
mark("imports")
app = App(context=FEATURE_FLAGS)
mark("App()")
config = load_config(Path(app.node.try_get_context("config")))
mark("config (pydantic)")
for tower in config.towers.values():
    if tower.image == "dlc":
        resolve_image(tower, config.region)
mark("image URIs")
add_environment(app, config)
add_nag_packs(app)
mark("construct tree")
app.synth()
mark("app.synth()")
def descendants(pid):
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            yield child
            yield from descendants(child)
cpu = 0.0
for pid in descendants(os.getpid()):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
steps = {b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}
print(json.dumps({"steps": steps, "node_cpu": cpu}))
"""


def _median_wall(command: list[str], runs: int, **kwargs: object) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=False, capture_output=True, **kwargs)  # type: ignore[call-overload]
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _imports() -> dict[str, float]:
    """Cumulative import seconds per top-level package (``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", APP_IMPORTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, float] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split("|"))
        if name in IMPORT_GROUPS or (name.startswith("hf_towers.") and name.count(".") == 1):
            key = "hf_towers (own modules)" if name.startswith("hf_towers") else name
            found[key] = found.get(key, 0.0) + int(cumulative) / 1e6
    return found


def _sdk_import() -> float:
    probe = "import time; t = time.perf_counter(); import sagemaker.core.image_uris; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return float(result.stdout)


def _app_run(config: str, *, builtin_validation: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        context = {
            **app_context({"config": config}),
            "@aws-cdk/core.slowSynthThreshold": 0,  # CDK writes its counters for any duration
        }
        env = {
            **cdk_environment(),
            "CDK_OUTDIR": str(Path(tmp) / "out"),
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_APP_MODE": "process",
            "CDK_PERF_COUNTERS_FILE": str(Path(tmp) / "perf.json"),
        }
        if not builtin_validation:
            env["CDK_VALIDATION"] = "false"
        result = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"the app failed:\n{result.stderr}")
        figures: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
        figures["counters"] = json.loads((Path(tmp) / "perf.json").read_text())["counters"]
        return figures


def _cli_alone() -> float:
    """``cdk synth`` of an app that only writes an empty assembly: the CLI's own seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "empty_app.py"
        app.write_text(
            "import json, os\n"
            "json.dump({'version': '36.0.0', 'artifacts': {}},"
            " open(os.path.join(os.environ['CDK_OUTDIR'], 'manifest.json'), 'w'))\n"
        )
        command = cdk_command(["synth", "-a", f"{sys.executable} {app}", "--output", f"{tmp}/out"])
        return _median_wall(command, 2, cwd=REPO, env=cdk_environment())


def _cfn_lint(config: str) -> tuple[float, float, dict[str, float]]:
    """(import s, rules s, seconds per template) in one process, on a fresh assembly."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        env = {
            **cdk_environment(),
            "CDK_OUTDIR": str(out),
            "CDK_CONTEXT_JSON": json.dumps(app_context({"config": config})),
            "CDK_APP_MODE": "process",
        }
        subprocess.run(
            [sys.executable, "app.py"], cwd=REPO, env=env, check=True, capture_output=True
        )
        probe = (
            "import json, sys, time\n"
            "from pathlib import Path\n"
            "t = time.perf_counter()\n"
            "from hf_towers.tools import synth_check\n"
            "import cfnlint.api, cfnlint.runner\n"
            "imported = time.perf_counter()\n"
            "synth_check._rules()\n"
            "rules = time.perf_counter()\n"
            "each = {}\n"
            "for name, path in synth_check.templates(Path(sys.argv[1])).items():\n"
            "    s = time.perf_counter(); synth_check.lint(path); each[name] = time.perf_counter() - s\n"
            "print(json.dumps([imported - t, rules - imported, each]))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe, str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        imported, rules, each = json.loads(result.stdout)
        return imported, rules, each


def _synth_check(config: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "hf_towers.tools.synth_check", "--config", config],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"make synth failed:\n{result.stdout}{result.stderr}")
    return elapsed, result.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/default.yaml")
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    rows: list[tuple[str, float, str]] = []

    def row(part: str, seconds: float, note: str = "") -> None:
        rows.append((part, seconds, note))
        print(f"  {part:<52} {seconds:6.2f} s  {note}", flush=True)

    load = os.getloadavg()[0]
    print(f"synth breakdown, {args.config} (load average {load:.1f} on {os.cpu_count()} CPUs)")
    row("python start (python -c pass)", _median_wall([sys.executable, "-c", "pass"], 3))
    for name, seconds in sorted(_imports().items(), key=lambda item: -item[1]):
        row(f"import {name}", seconds, "cumulative, -X importtime")
    row(
        "(not paid) import sagemaker.core.image_uris",
        _sdk_import(),
        "what the SDK lookup would add",
    )
    full = _app_run(args.config, builtin_validation=True)
    bare = _app_run(args.config, builtin_validation=False)
    steps = full["steps"]
    assert isinstance(steps, dict)
    counters = full["counters"]
    assert isinstance(counters, dict)
    bare_counters = bare["counters"]
    assert isinstance(bare_counters, dict)
    for step in ("App()", "config (pydantic)", "image URIs", "construct tree", "app.synth()"):
        row(f"app: {step}", steps[step], "in the app's own run" if step == "App()" else "")
    written = (counters.get("fs.writeSync", 0) + counters.get("fs.writeFileSync", 0)) / 1000
    row("  of app.synth(): writing the assembly", written, "CDK counters fs.write*")
    row(
        "  of app.synth(): the four nag packs",
        bare_counters.get("validateTemplates", 0) / 1000,
        "validateTemplates with CDK_VALIDATION=false",
    )
    row(
        "  of app.synth(): CDK's built-in CloudFormation validation",
        (counters.get("validateTemplates", 0) - bare_counters.get("validateTemplates", 0)) / 1000,
        "the difference (cfn-lint-like rules in WASM)",
    )
    node_cpu = full["node_cpu"]
    assert isinstance(node_cpu, float)
    row("jsii kernel (Node) CPU time", node_cpu, "overlaps the steps above")
    row("(not paid) the CDK CLI itself", _cli_alone(), "cdk synth of an empty app")
    imported, rules, each = _cfn_lint(args.config)
    row("cfn-lint: import", imported, "in the lint workers, during synthesis")
    row("cfn-lint: load its rules", rules, "once per worker, during synthesis")
    for name, seconds in each.items():
        row(f"cfn-lint: {name}", seconds)
    row("cfn-lint: all templates one after another", sum(each.values()), "split over 2 workers")
    elapsed, summary = _synth_check(args.config)
    row("make synth (python -m hf_towers.tools.synth_check)", elapsed, summary.split("; ")[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
