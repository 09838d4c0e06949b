"""Child processes of the local stack: free ports, readiness waits and a managed redis-server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 20.0,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts connections on host:port, or fail with the reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


class ManagedProcess:
    """A child process that is stopped with SIGTERM, then SIGKILL after a grace period."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 log_path: Path | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})}, cwd=self.cwd,
            )
        finally:
            if self.log_path:
                out.close()  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code


class ServerProcess:
    """A managed process that serves on a loopback port: started means accepting connections."""

    port: int
    _process: ManagedProcess

    @property
    def running(self) -> bool:
        return self._process.running

    def start(self) -> None:
        self._process.start()
        wait_for_port(self.port, process=self._process.process)

    def stop(self) -> None:
        self._process.stop()


class RedisServer(ServerProcess):
    """A redis-server on a loopback port with its data in `directory`.

    `appendonly` follows the deployment rule (AOF, fsync every second); stop and start keep
    the data, which is what outage tests need.
    """

    def __init__(self, directory: Path, *, port: int | None = None,
                 appendonly: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test` or "
                               "`apt-get install redis-server`")
        self.directory = directory
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess("redis", [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "everysec", "--daemonize", "no", "--protected-mode", "yes",
        ], log_path=directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
