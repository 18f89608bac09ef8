"""Exporting a git ref and reading cloud assemblies (no CDK synth here; see test_diff_report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hf_towers.risk import synth
from hf_towers.risk.synth import SynthError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file.txt").write_text("base\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    (root / "sub" / "file.txt").write_text("changed\n")
    return root


def test_export_ref_writes_the_committed_tree(repo: Path, tmp_path: Path) -> None:
    sha = synth.resolve_ref(repo, "HEAD")
    assert len(sha) == 40
    dest = tmp_path / "out"
    dest.mkdir()
    synth.export_ref(repo, sha, dest)
    assert (dest / "sub" / "file.txt").read_text() == "base\n"
    assert not (dest / ".git").exists()
    assert git(repo, "worktree", "list").count("\n") == 0  # no worktree added


def test_bad_refs_are_rejected(repo: Path) -> None:
    with pytest.raises(SynthError, match="rev-parse"):
        synth.resolve_ref(repo, "no-such-branch")
    with pytest.raises(SynthError, match="not a git ref"):
        synth.resolve_ref(repo, "--output=/tmp/x")


def test_locate_finds_prefix(repo: Path) -> None:
    location = synth.locate(repo / "sub")
    assert location.toplevel == repo.resolve()
    assert location.prefix == "sub"


def _stack(
    outdir: Path, artifact_id: str, template: dict[str, object], display: str | None = None
) -> dict[str, object]:
    (outdir / f"{artifact_id}.template.json").write_text(json.dumps(template))
    artifact: dict[str, object] = {
        "type": "aws:cloudformation:stack",
        "properties": {"templateFile": f"{artifact_id}.template.json"},
    }
    if display:
        artifact["displayName"] = display
    return artifact


def test_read_assembly_with_nested_stage(tmp_path: Path) -> None:
    (tmp_path / "assembly-Prod").mkdir()
    nested = {
        "artifacts": {
            "ProdApi": _stack(
                tmp_path / "assembly-Prod", "ProdApi", {"Resources": {"N": {}}}, "Prod/Api"
            )
        }
    }
    (tmp_path / "assembly-Prod" / "manifest.json").write_text(json.dumps(nested))
    top = {
        "artifacts": {
            "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
            "Top": _stack(tmp_path, "Top", {"Resources": {"T": {}}}),
            "assembly-Prod": {
                "type": "cdk:cloud-assembly",
                "properties": {"directoryName": "assembly-Prod"},
            },
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(top))
    stacks = synth.read_assembly(tmp_path)
    assert stacks == {"Top": {"Resources": {"T": {}}}, "Prod/Api": {"Resources": {"N": {}}}}


def test_read_assembly_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match=r"manifest\.json"):
        synth.read_assembly(tmp_path)


def test_synth_env_is_offline_and_carries_context(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text(
        json.dumps({"app": "python3 bin/app.py", "context": {"a": 1, "b": 1}})
    )
    (tmp_path / "cdk.context.json").write_text(json.dumps({"b": 2}))
    base = {"PATH": "/usr/bin", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_PROFILE": "p", "HOME": "/h"}
    env = synth.synth_env(tmp_path / "out", tmp_path, base)
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_PROFILE" not in env
    assert env["HOME"] == "/h"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["CDK_OUTDIR"] == str(tmp_path / "out")
    assert json.loads(env["CDK_CONTEXT_JSON"]) == {"a": 1, "b": 2}
    assert synth._app_script(tmp_path) == "bin/app.py"


def test_app_script_defaults_to_app_py(tmp_path: Path) -> None:
    assert synth._app_script(tmp_path) == "app.py"
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "npx ts-node bin/app.ts"}))
    assert synth._app_script(tmp_path) == "app.py"


def test_synth_failure_reports_stderr(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import sys\nsys.exit('boom: bad config')\n")
    with pytest.raises(SynthError, match="boom: bad config"):
        synth.synth_app(tmp_path, tmp_path / "out")


def test_missing_app(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="no CDK app"):
        synth.synth_app(tmp_path, tmp_path / "out")


def test_app_output_is_read(tmp_path: Path) -> None:
    # A stand-in app that writes an assembly where CDK_OUTDIR says, as cdk.App().synth() does.
    (tmp_path / "app.py").write_text(
        "import json, os, pathlib\n"
        "out = pathlib.Path(os.environ['CDK_OUTDIR']); out.mkdir(parents=True)\n"
        "(out / 'S.template.json').write_text(json.dumps({'Resources': {}}))\n"
        "m = {'artifacts': {'S': {'type': 'aws:cloudformation:stack',"
        " 'properties': {'templateFile': 'S.template.json'}}}}\n"
        "(out / 'manifest.json').write_text(json.dumps(m))\n"
        "assert 'AWS_SECRET_ACCESS_KEY' not in os.environ\n"
    )
    assert synth.synth_app(tmp_path, tmp_path / "out") == {"S": {"Resources": {}}}


def _app_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_discover_environments_reads_config_and_pipeline(tmp_path: Path) -> None:
    app = _app_tree(
        tmp_path,
        {
            "config/default.yaml": "environment: dev\n",
            "config/prod.yaml": "environment: prod\n",
            "config/legacy.yml": "environment: legacy\n",
            "config/pipeline.yaml": "environments: [config/prod.yaml, ./envs/qa.yaml]\n",
            "config/examples/async.yaml": "environment: example\n",
            "envs/qa.yaml": "environment: qa\n",
            "config/notes.txt": "not yaml\n",
        },
    )
    # The pipeline file is not an environment; its environments are (deduplicated, one
    # outside config/ too); config/examples/ are examples, not deployed.
    assert synth.discover_environments(app) == [
        "config/default.yaml",
        "config/legacy.yml",
        "config/prod.yaml",
        "envs/qa.yaml",
    ]


def test_discover_environments_of_the_repository() -> None:
    root = Path(__file__).resolve().parents[2]
    assert synth.discover_environments(root) == [
        "config/default.yaml",
        "config/dev.yaml",
        "config/prod.yaml",
        "config/staging.yaml",
    ]


def test_broken_pipeline_environments_are_a_message(tmp_path: Path) -> None:
    app = _app_tree(tmp_path, {"config/pipeline.yaml": "environments: config/dev.yaml\n"})
    with pytest.raises(SynthError, match=r"config/pipeline\.yaml \(working tree\): environments"):
        synth.discover_environments(app)
    (tmp_path / "config" / "pipeline.yaml").write_text("environments: [\n")
    with pytest.raises(SynthError, match="cannot be read as YAML"):
        synth.discover_environments(app, "base origin/main")


def test_select_environments_checks_each_path(tmp_path: Path) -> None:
    head = _app_tree(
        tmp_path / "head",
        {
            "config/prod.yaml": "environment: prod\n",
            "config/pipeline.yaml": "environments: [config/prod.yaml]\n",
            "README.md": "# app\n",
        },
    )
    base = _app_tree(tmp_path / "base", {"config/old.yaml": "environment: old\n"})
    sides = {"working tree": head, "base origin/main": base}
    selected = synth.select_environments(
        [Path("config/prod.yaml"), Path("config/old.yaml"), Path("./config/prod.yaml")],
        head,
        sides,
    )
    assert selected == ["config/prod.yaml", "config/old.yaml"]  # a deleted one is selectable
    assert synth.select_environments([Path("prod.yaml")], head / "config", sides) == [
        "config/prod.yaml"
    ]
    for given, message in [
        ("README.md", r"--config README\.md: not a config file \(expected \.yaml or \.yml\)"),
        ("config/pipeline.yaml", r"is the pipeline config, not an environment: .*config/prod"),
        ("config/nope.yaml", "no such file in the working tree nor in base origin/main"),
        ("../elsewhere.yaml", "is outside the CDK app"),
    ]:
        with pytest.raises(synth.SelectionError, match=message):
            synth.select_environments([Path(given)], head, sides)


CONFIG_APP = """\
import sys
import aws_cdk as cdk
app = cdk.App()
config = app.node.try_get_context("config")
if config == "config/bad.yaml":
    sys.exit("error: config/bad.yaml: towers: required key is missing")
stack = cdk.Stack(app, "Svc-" + config.split("/")[-1].split(".")[0])
cdk.CfnOutput(stack, "Config", value=open(config).read().strip())
app.synth()
"""


@pytest.mark.slow
def test_synth_configs_one_process_per_side(tmp_path: Path) -> None:
    app = _app_tree(
        tmp_path / "app",
        {
            "app.py": CONFIG_APP,
            "config/dev.yaml": "dev-value",
            "config/prod.yaml": "prod-value",
            "config/bad.yaml": "x",
        },
    )
    result = synth.synth_configs(
        app, ["config/dev.yaml", "config/bad.yaml", "config/prod.yaml"], tmp_path / "out"
    )
    # Each environment synthesized with its own config context, into its own assembly; the
    # app's exit message is that environment's error and does not stop the others.
    assert sorted(result.assemblies) == ["config/dev.yaml", "config/prod.yaml"]
    assert list(result.assemblies["config/dev.yaml"]) == ["Svc-dev"]
    outputs = result.assemblies["config/prod.yaml"]["Svc-prod"]["Outputs"]
    assert outputs["Config"]["Value"] == "prod-value"
    assert result.errors == {
        "config/bad.yaml": "the app exited with: error: config/bad.yaml: towers: required key "
        "is missing"
    }


def test_synth_configs_without_app(tmp_path: Path) -> None:
    result = synth.synth_configs(tmp_path, ["config/dev.yaml"], tmp_path / "out")
    assert result.assemblies == {}
    assert "no CDK app" in result.errors["config/dev.yaml"]
