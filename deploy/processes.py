"""Child processes of the local stack: free ports, readiness waits, redis-server, Redis Cluster."""

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
    the data, which is what outage tests need. With `cluster`, it is a Redis Cluster node
    (see `RedisClusterNodes`), its cluster configuration kept in `directory` too.
    """

    def __init__(self, directory: Path, *, port: int | None = None,
                 appendonly: bool = True, cluster: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test` or "
                               "`apt-get install redis-server`")
        self.directory = directory
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        # The cluster bus defaults to port + 10000, which is past 65535 for a high free port.
        # A node silent for 3 s fails (the default is 15 s), so a lost node shows at once.
        node = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(free_port()), "--cluster-node-timeout", "3000",
                ] if cluster else []
        self._process = ManagedProcess("redis", [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "everysec", "--daemonize", "no", "--protected-mode", "yes", *node,
        ], log_path=directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class RedisClusterNodes:
    """A Redis Cluster of `primaries` redis-server nodes on loopback ports, no replicas.

    The first start joins them with `redis-cli --cluster create`; stop and start keep the data
    and the cluster's configuration, as a restarted cluster does. Started means every node
    reports `cluster_state:ok`.
    """

    def __init__(self, directory: Path, *, primaries: int = 3) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed: `apt-get install redis-tools`")
        self.cli = cli
        self.nodes = [RedisServer(directory / f"node-{n}", cluster=True)
                      for n in range(primaries)]

    @property
    def url(self) -> str:
        """One node's address; cluster clients find the others from it."""
        return self.nodes[0].url

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        if self._info(self.nodes[0]).get("cluster_slots_assigned") == "0":
            subprocess.run([self.cli, "--cluster", "create",
                            *(f"127.0.0.1:{node.port}" for node in self.nodes),
                            "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, capture_output=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not all(self._info(node).get("cluster_state") == "ok" for node in self.nodes):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster was not ok after {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _info(self, node: RedisServer) -> dict[str, str]:
        reply = subprocess.run([self.cli, "-p", str(node.port), "cluster", "info"],
                               check=True, capture_output=True, text=True, timeout=10).stdout
        return dict(line.strip().split(":", 1) for line in reply.splitlines() if ":" in line)
