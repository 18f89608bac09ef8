"""A throwaway single-node Ceph S3 gateway (RGW) on 127.0.0.1 for the benchmarks.

Real S3 software from Debian packages (``ceph-mon ceph-osd radosgw``, 16.2): one monitor, one
memstore OSD (objects live in RAM, ``device_bytes`` at most) and one radosgw (beast frontend).
Far closer to S3 than moto for multipart uploads and ``UploadPartCopy``, which RGW performs as a
real server-side copy. SSE-KMS requests are served by RGW's ``testing`` KMS backend with the key
id ``KMS_KEY_ID``. ``with CephRgw() as rgw:`` starts it in a temporary folder on free ports and
stops every daemon and deletes the folder afterwards, also when the benchmark fails.

Based on ``../shared/tools/ceph_rgw_up.sh`` (a setup that ran on these machines).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType

PACKAGES = ("ceph-mon", "ceph-osd", "radosgw")
DAEMONS = ("ceph-mon", "ceph-osd", "radosgw")
KMS_KEY_ID = "testkey-1"
ACCESS_KEY = SECRET_KEY = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_binaries() -> list[str]:
    return [name for name in (*DAEMONS, "radosgw-admin", "ceph") if shutil.which(name) is None]


class CephRgw:
    """Start/stop a single-node Ceph RGW. ``endpoint`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, *, device_bytes: int = 10 * 1024**3, workdir: Path | None = None) -> None:
        missing = missing_binaries()
        if missing:
            raise RuntimeError(
                f"Ceph binaries missing: {', '.join(missing)}; install the Debian packages "
                f"{' '.join(PACKAGES)} (make bench-repack does: apt-get install -y {' '.join(PACKAGES)})"
            )
        self.device_bytes = device_bytes
        self.dir = Path(tempfile.mkdtemp(prefix="ceph-rgw-", dir=workdir))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CephRgw:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    @property
    def conf(self) -> Path:
        return self.dir / "ceph.conf"

    def _write_conf(self) -> None:
        c = self.dir
        mon_v2, mon_v1 = free_port(), free_port()
        key = base64.b64encode(os.urandom(32)).decode()
        self.mon_host = f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]"
        self.conf.write_text(
            f"""[global]
fsid = {uuid.uuid4()}
mon host = {self.mon_host}
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc secure
ms client mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
run dir = {c}/run
admin socket = {c}/run/$name.asok
log file = {c}/log/$name.log
pid file = {c}/run/$name.pid
keyring = {c}/keyring
[mon]
mon data = {c}/mon
[osd]
osd data = {c}/osd$id
osd objectstore = memstore
memstore device bytes = {self.device_bytes}
osd memory target = 1073741824
osd max object size = 134217728
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{self.port}
rgw data = {c}/rgw
rgw gc obj min wait = 0
rgw gc processor period = 10
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = {KMS_KEY_ID}={key}
rgw crypt default encryption key = {key}
"""
        )

    def _run(self, *cmd: str, timeout: float = 120) -> str:
        result = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr[-2000:]}"
            )
        return result.stdout

    def _start(self) -> None:
        c, conf = self.dir, str(self.conf)
        for sub in ("mon", "osd0", "run", "log", "rgw"):
            (c / sub).mkdir(parents=True, exist_ok=True)
        self._write_conf()
        keyring, monmap = str(c / "keyring"), str(c / "monmap")
        self._run(
            "ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.",
            "--cap", "mon", "allow *",
        )  # fmt: skip
        fsid = self.conf.read_text().split("fsid = ", 1)[1].split("\n", 1)[0]
        self._run("monmaptool", "--create", "--addv", "a", self.mon_host, "--fsid", fsid, monmap)
        self._run("ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap,
                  "--keyring", keyring)  # fmt: skip
        self._run("ceph-mon", "-c", conf, "-i", "a")
        self._wait(lambda: self._ok("ceph", "-c", conf, "mon", "stat"), 60, "ceph-mon")
        self._run("ceph", "-c", conf, "osd", "create")
        self._run("ceph-osd", "-c", conf, "-i", "0", "--mkfs")
        self._run("ceph-osd", "-c", conf, "-i", "0")
        self._wait(lambda: "1 up" in self._quiet("ceph", "-c", conf, "osd", "stat"), 90, "ceph-osd")
        self._run("radosgw", "-c", conf, "-n", "client.rgw.a")
        self._wait(self._rgw_answers, 120, "radosgw")
        self._run(
            "radosgw-admin", "-c", conf, "user", "create", "--uid=bench", "--display-name=bench",
            f"--access-key={ACCESS_KEY}", f"--secret-key={SECRET_KEY}",
        )  # fmt: skip

    def collect_garbage(self) -> None:
        """Free the storage of deleted objects now: RGW deletes their data lazily (garbage
        collection, by default after two hours), and the memstore OSD keeps it in RAM until
        then, so a benchmark that deletes its outputs would still fill the device."""
        self._run(
            "radosgw-admin", "-c", str(self.conf), "gc", "process", "--include-all", timeout=600
        )

    def _ok(self, *cmd: str) -> bool:
        return (
            subprocess.run(list(cmd), capture_output=True, timeout=30, check=False).returncode == 0
        )

    def _quiet(self, *cmd: str) -> str:
        try:
            return subprocess.run(
                list(cmd), capture_output=True, text=True, timeout=30, check=False
            ).stdout
        except subprocess.TimeoutExpired:
            return ""

    def _rgw_answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint, timeout=5):
                return True
        except OSError:
            return False

    @staticmethod
    def _wait(ready: object, seconds: float, what: str) -> None:
        assert callable(ready)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")

    def stop(self) -> None:
        """Stop every daemon this instance started (pid files), then delete its folder."""
        run = self.dir / "run"
        pids = []
        for pid_file in sorted(run.glob("*.pid")) if run.is_dir() else []:
            with contextlib.suppress(ValueError, OSError):
                pids.append(int(pid_file.read_text().strip()))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for pid in pids:
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0): reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


if __name__ == "__main__":  # a manual check: start, list buckets, stop
    import boto3

    with CephRgw() as rgw:
        s3 = boto3.client(
            "s3",
            endpoint_url=rgw.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="probe")
        s3.put_object(
            Bucket="probe", Key="k", Body=b"x" * 10, ServerSideEncryption="aws:kms",
            SSEKMSKeyId=KMS_KEY_ID,
        )  # fmt: skip
        print(rgw.endpoint, [b["Name"] for b in s3.list_buckets()["Buckets"]],
              s3.get_object(Bucket="probe", Key="k")["Body"].read())  # fmt: skip
