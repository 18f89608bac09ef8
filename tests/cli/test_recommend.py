"""``main.py recommend``: sizing from a local file or folder and from S3 (moto server), the fit
rule, budget and CPU/GPU filters, and the CLI's messages and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import boto3
import pytest

from hf_towers.cli import recommend as cli
from hf_towers.recommend import (
    GIB,
    ArtifactError,
    InstanceType,
    PriceTable,
    artifact_size,
    load_prices,
    recommend,
)

BUCKET = "models-under-test"


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real boto3 client on the moto server; boto3's defaults point there too (for the CLI)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    return client


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["recommend", *argv])
    code: int = args.func(args)
    return code


TABLE = PriceTable(
    region="us-east-1",
    as_of="2025-01-15",
    currency="USD",
    instances=(
        InstanceType("ml.cpu.small", vcpu=2, memory_gib=8, gpus=0, gpu_memory_gib=0, price=0.1),
        InstanceType("ml.cpu.big", vcpu=4, memory_gib=32, gpus=0, gpu_memory_gib=0, price=0.4),
        InstanceType("ml.gpu.one", vcpu=4, memory_gib=16, gpus=1, gpu_memory_gib=24, price=1.0),
        InstanceType("ml.gpu.four", vcpu=48, memory_gib=192, gpus=4, gpu_memory_gib=96, price=5.0),
    ),
)


def test_fit_rule_counts_workers_and_overhead_cheapest_first() -> None:
    # 2 GiB x 2 workers x 1.5 = 6 GiB fits 8; 2 x 4 x 1.5 = 12 fits 32; GPU: 2 x 1 x 1.5 = 3 of 24
    found = recommend(2 * GIB, TABLE)
    assert [r.instance.name for r in found] == [
        "ml.cpu.small",
        "ml.cpu.big",
        "ml.gpu.one",
        "ml.gpu.four",
    ]
    small = found[0]
    assert (small.workers, small.needed_gib, small.available_gib) == (2, 6.0, 8.0)
    assert small.headroom == pytest.approx(0.25)
    # 3 GiB: 3 x 2 x 1.5 = 9 > 8 GiB: the small CPU type no longer fits
    assert "ml.cpu.small" not in [r.instance.name for r in recommend(3 * GIB, TABLE)]


def test_gpu_types_are_bounded_by_one_gpu_and_by_host_memory() -> None:
    # 12 GiB x 1.5 = 18 GiB per worker: fits a 24 GiB GPU, but not the 16 GiB host of gpu.one
    found = recommend(12 * GIB, TABLE, gpu=True)
    assert [r.instance.name for r in found] == ["ml.gpu.four"]
    assert (found[0].workers, found[0].needed_gib, found[0].available_gib) == (4, 18.0, 24.0)
    # 8 workers on 4 GPUs: two per GPU need 36 GiB of a 24 GiB GPU
    assert recommend(12 * GIB, TABLE, gpu=True, workers=8) == []


def test_budget_and_kind_filters() -> None:
    assert [r.instance.name for r in recommend(1 * GIB, TABLE, budget=0.5)] == [
        "ml.cpu.small",
        "ml.cpu.big",
    ]
    assert all(not r.instance.gpu for r in recommend(1 * GIB, TABLE, gpu=False))
    with pytest.raises(ArtifactError, match="empty"):
        recommend(0, TABLE)


def test_price_table_is_dated_regional_and_complete() -> None:
    table = load_prices()
    assert (table.region, table.currency) == ("us-east-1", "USD")
    assert table.as_of[:2] == "20" and len(table.as_of) == 10
    names = {i.name for i in table.instances}
    assert {"ml.m5.xlarge", "ml.g5.xlarge", "ml.g5.8xlarge", "ml.c5.large"} <= names
    assert all(i.price > 0 and i.memory_gib > 0 for i in table.instances)
    assert all((i.gpus > 0) == (i.gpu_memory_gib > 0) for i in table.instances)


def test_local_file_and_folder_sizes(tmp_path: Path) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"x" * 1000)
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.safetensors").write_bytes(b"x" * 300)
    (folder / "sub" / "b.bin").write_bytes(b"x" * 200)
    assert artifact_size(str(model)) == 1000
    assert artifact_size(str(folder)) == 500
    with pytest.raises(ArtifactError, match="no such file"):
        artifact_size(str(tmp_path / "missing"))


def test_s3_object_and_prefix_sizes_via_a_real_s3_endpoint(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="v1/model.tar.gz", Body=b"y" * 4096)
    s3.put_object(Bucket=BUCKET, Key="v2/model/a.bin", Body=b"y" * 100)
    s3.put_object(Bucket=BUCKET, Key="v2/model/b.bin", Body=b"y" * 50)
    assert artifact_size(f"s3://{BUCKET}/v1/model.tar.gz", client=s3) == 4096
    assert artifact_size(f"s3://{BUCKET}/v2/model/", client=s3) == 150
    with pytest.raises(ArtifactError, match=r"cannot read its size \(404\)"):
        artifact_size(f"s3://{BUCKET}/nope.tar.gz", client=s3)
    with pytest.raises(ArtifactError, match="no objects under this prefix"):
        artifact_size(f"s3://{BUCKET}/empty/", client=s3)


def test_cli_reads_s3_with_default_credentials_and_prints_cheapest_first(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key="big/model.tar.gz", Body=b"z" * (3 * 1024 * 1024))
    code = _main([f"s3://{BUCKET}/big/model.tar.gz", "--budget", "0.5", "--top", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert "prices: us-east-1 on-demand hosting as of" in out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert len(rows) == 3
    prices = [float(r[1]) for r in rows]
    assert prices == sorted(prices) and max(prices) <= 0.5
    assert rows[0][0] == "ml.t2.medium"


def test_cli_gpu_only_and_nothing_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"x" * 1024)
    assert _main([str(model), "--gpu", "--top", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("ml.g4dn.xlarge")
    assert _main([str(model), "--budget", "0.01"]) == 1
    assert "no instance type fits under 0.01 USD/hour" in capsys.readouterr().err
    assert _main([str(tmp_path / "missing.tar.gz")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_cli_rejects_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _main(["model.tar.gz", "--budget", "-1"])
    assert info.value.code == 2
    assert "--budget: '-1' must be greater than 0" in capsys.readouterr().err


def test_cli_without_credentials_says_so_with_its_own_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No credentials anywhere: a message naming the URI and the fix, exit 3 (not a traceback,
    and not 1, which means "nothing fits")."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    # A fresh default session, as a new CLI process has (botocore caches resolved credentials).
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    assert _main(["s3://some-bucket/model.tar.gz"]) == 3
    err = capsys.readouterr().err
    assert "s3://some-bucket/model.tar.gz: no AWS credentials found" in err
    assert "AWS_PROFILE" in err
    assert "Traceback" not in err


# --- recommend --config: shared vs separate endpoint cost -------------------------------------

DEFAULT_CONFIG = "config/default.yaml"


def test_cli_config_prints_both_costs_of_the_default_towers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert _main(["--config", DEFAULT_CONFIG]) == 0
    out = capsys.readouterr().out
    table = load_prices()
    assert f"730 h of on-demand hosting at {table.region} prices as of {table.as_of}" in out
    # Separate: ml.g5.xlarge + 2 x ml.m5.xlarge around the clock.
    separate = (1.408 + 0.23 + 0.23) * 730
    assert f"separate endpoints: {separate:,.2f} USD/month" in out
    assert "vision       ml.g5.xlarge     x1  1.408/h  1,027.84 USD/month" in out
    # Shared: the assumption is stated, then the cheapest type and the towers' own family.
    assert "reservations assumed for vision, text, qa (no compute: in the file)" in out
    assert "cheapest type that holds them: ml.g4dn.xlarge x1" in out
    assert "cheapest of the towers' own GPU family: ml.g5.xlarge x1" in out
    assert f"saves {separate - 1.408 * 730:,.2f} (25%) vs separate" in out
    # Scale to zero as a formula, and the cold start said plainly.
    assert "USD/hour x idle hours a month" in out
    assert "requests fail with an error" in out


def test_cli_config_with_a_shared_endpoint_prices_the_configured_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / DEFAULT_CONFIG).read_text(encoding="utf-8"))
    data["shared_endpoints"] = {
        "gpu": {
            "towers": ["vision", "text"],
            "instance_type": "ml.g5.xlarge",
            "managed_instance_scaling": {"min_instance_count": 0, "max_instance_count": 2},
        }
    }
    for name in ("vision", "text"):  # members run on the endpoint's type, with reservations
        data["towers"][name].pop("instance_type", None)
        data["towers"][name].pop("initial_instance_count", None)
        data["towers"][name]["compute"] = {"accelerators": 1, "min_memory_mib": 1024}
        data["towers"][name]["copies"] = {"initial": 1, "min": 0, "max": 1}
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert _main(["--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "shared_endpoints.gpu (vision, text)" in out
    # Each tower reserves a whole GPU: two 1-GPU instances, the same as separate.
    assert "cheapest of the towers' own GPU family: ml.g5.xlarge x2" in out
    assert "saves 0.00 (0%) vs separate" in out
    assert "configured: ml.g5.xlarge x1  1,027.84 USD/month" in out
    assert "does NOT fit: the copies need 2 instances of this type, 1 configured" in out
    assert "max_instance_count 2 lets SageMaker add them" in out
    assert "min_instance_count: 0, as configured" in out
    # Both towers reserve their accelerator: no GPU-sharing sizing is guessed.
    assert "share one GPU (no accelerator reserved, memory only" not in out


def test_cli_config_errors_and_exclusive_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main([]) == 2
    assert (
        "give an ARTIFACT to size instance types for, or --config FILE" in capsys.readouterr().err
    )
    assert _main(["model.tar.gz", "--config", DEFAULT_CONFIG]) == 2
    assert "(not both)" in capsys.readouterr().err
    assert _main(["--config", DEFAULT_CONFIG, "--gpu", "--top", "3"]) == 2
    assert "--gpu/--cpu, --top size an ARTIFACT and do nothing with --config" in (
        capsys.readouterr().err
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: hf-towers\ntowers: {}\n", encoding="utf-8")
    assert _main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recommend: invalid configuration:") and "Traceback" not in err
    assert f"{bad}: towers = {{}}: must map tower names" in err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        (Path(__file__).resolve().parents[2] / DEFAULT_CONFIG)
        .read_text(encoding="utf-8")
        .replace("instance_type: ml.m5.xlarge", "instance_type: ml.zz9.huge", 1),
        encoding="utf-8",
    )
    assert _main(["--config", str(unknown)]) == 2
    assert "ml.zz9.huge is not in the price table" in capsys.readouterr().err


def test_readme_figures_are_what_the_command_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    assert _main(["--config", DEFAULT_CONFIG]) == 0
    out = capsys.readouterr().out
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("#### Shared vs separate endpoints") :]
    section = section[: section.index("\n## ")]
    assert "python main.py recommend --config config/default.yaml" in section
    table = load_prices()
    assert f"{table.region}\nprices of {table.as_of}" in section
    for printed, shown in [
        ("separate endpoints: 1,363.64 USD/month", "| 1,363.64 |"),
        ("ml.g5.xlarge x1  1.408/h each  1,027.84 USD/month", "1,027.84 (saves 335.80, 25 %)"),
        ("saves 335.80 (25%) vs separate", "1,027.84 (saves 335.80, 25 %)"),
        ("ml.g4dn.xlarge x1  0.736/h each  537.28 USD/month", "537.28 (saves 826.36, 61 %)"),
        ("saves 826.36 (61%) vs separate", "537.28 (saves 826.36, 61 %)"),
    ]:
        assert printed in out
        assert shown in section
