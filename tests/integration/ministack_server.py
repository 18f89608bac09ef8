"""A MiniStack server on 127.0.0.1 with IAM enforced (``AUTH=true``) over HTTPS (``USE_SSL=1``).

Settings read from MiniStack 1.5.33's source (``ministack/app.py``, ``core/tls.py``,
``core/lambda_runtime.py``, ``core/iam_evaluator.py``):

* ``GATEWAY_PORT`` / ``BIND_HOST``: where it listens. With ``USE_SSL`` it *also* binds port 443
  on ``BIND_HOST`` when that port is free (no setting turns this off); it is only ever on
  loopback here.
* ``AUTH=true``: SigV4 signatures are verified and IAM policies evaluated. The access key
  ``test`` (or ``AWS_ACCESS_KEY_ID`` of the server's own environment) is the account's root
  user, which IAM does not restrict: the CDK CLI and the test's own boto3 clients use it. A
  Lambda gets credentials of a session of its execution role (``execution_credentials``), so
  whatever the handler does is checked against the role's policies.
* ``USE_SSL=1`` with ``MINISTACK_SSL_CERT``/``MINISTACK_SSL_KEY``: a certificate made here with
  ``openssl`` (SAN ``localhost``, ``127.0.0.1``). Clients trust it through ``AWS_CA_BUNDLE``
  (botocore) and ``NODE_EXTRA_CA_CERTS`` (Node: the CDK CLI and the Provider framework's
  functions); the server's environment carries both, and its Lambda processes inherit it.
* Lambdas run as host processes (``LAMBDA_EXECUTOR=local``): Python ones with the server's own
  interpreter (so with the boto3 of its venv, ``ministack_venv.py``), Node ones with ``node``
  from ``PATH`` (the project venv's Node 24).
* ``TMPDIR``: the server's temporary files (Lambda code folders) stay in the fixture's folder;
  ``S3_DATA_DIR`` likewise (``S3_PERSIST`` stays off: state lives in memory).

SIGTERM does not stop the server promptly (its handler raises inside the event loop), so
``stop()`` terminates the whole process group (the server and its Lambda workers), then kills it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ACCESS_KEY = "test"  # MiniStack's root user: unrestricted by IAM (core/iam_evaluator.py)
SECRET_KEY = "test"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0


class MiniStackError(RuntimeError):
    """MiniStack could not be started or answered badly; the message has its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for ``localhost`` and ``127.0.0.1`` (not a CA)."""
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class MiniStack:
    """One server process; ``client_env()`` is what the CDK CLI and boto3 need to reach it."""

    def __init__(self, workdir: Path, *, python: str = sys.executable) -> None:
        self.workdir = workdir
        self.python = python
        self.port = free_port()
        self.endpoint = f"https://localhost:{self.port}"
        self.log_path = workdir / "ministack.log"
        self.cert, self.key = make_certificate(workdir)
        self._proc: subprocess.Popen[bytes] | None = None

    def _base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "MINISTACK_", "LOCALSTACK_"))
            and k not in ("GATEWAY_PORT", "EDGE_PORT", "AUTH", "USE_SSL", "SERVICES")
        }
        # The server's venv (its interpreter runs the Python Lambdas), then the project's venv:
        # its Node 24 runs the CDK CLI and the Provider framework's Node functions.
        bins = [str(Path(self.python).parent), str(Path(sys.executable).parent)]
        env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
        env["AWS_CA_BUNDLE"] = str(self.cert)
        env["NODE_EXTRA_CA_CERTS"] = str(self.cert)
        env["AWS_DEFAULT_REGION"] = REGION
        env["AWS_REGION"] = REGION
        return env

    def server_env(self) -> dict[str, str]:
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        return {
            **self._base_env(),
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "AUTH": "true",
            "USE_SSL": "1",
            "MINISTACK_SSL_CERT": str(self.cert),
            "MINISTACK_SSL_KEY": str(self.key),
            "MINISTACK_REGION": REGION,
            "LAMBDA_EXECUTOR": "local",
            "TMPDIR": str(tmp),
            "S3_DATA_DIR": str(self.workdir / "s3"),
            "STATE_DIR": str(self.workdir / "state"),
        }

    def client_env(self) -> dict[str, str]:
        return {
            **self._base_env(),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        log = self.log_path.open("wb")
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", "ministack"],
                env=self.server_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,  # its own process group: stop() ends the Lambda workers too
            )
        except OSError as exc:
            raise MiniStackError(f"cannot run {self.python} -m ministack: {exc}") from exc
        finally:
            log.close()
        context = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise MiniStackError(
                    f"MiniStack exited with {self._proc.returncode} at start "
                    f"(`{self.python} -m ministack`; is `ministack` from "
                    f"tests/integration/requirements-ministack.txt installed?):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.endpoint}/_ministack/health", context=context, timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise MiniStackError(
            f"MiniStack did not answer on {self.endpoint} within {START_TIMEOUT_S:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Lambda workers left behind by the server
