"""`make run`: the whole local stack on loopback, each service a child process, stopped together."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import ManagedProcess, RedisServer, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"


@dataclass
class Service:
    name: str
    module: str
    args: list[str]
    port: int | None
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def services(redis_url: str, ports: argparse.Namespace) -> list[Service]:
    livekit = {"LIVEKIT_URL": f"ws://127.0.0.1:{ports.livekit}",
               "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}
    orchestrator_url = f"http://127.0.0.1:{ports.orchestrator}"
    common = {"REDIS_URL": redis_url, "BATON_ENV": "development", **livekit}
    return [
        Service("devserver", "devserver",
                ["--port", str(ports.livekit), "--keys", "devkey:secret",
                 "--webhook", f"{orchestrator_url}/v1/livekit/webhook"],
                ports.livekit, url=livekit["LIVEKIT_URL"]),
        Service("orchestrator", "orchestrator", [], ports.orchestrator,
                {**common, "BATON_PORT": str(ports.orchestrator),
                 "BATON_API_KEYS": os.environ.get("BATON_API_KEYS", "dev-api-key")},
                url=orchestrator_url),
        Service("worker", "worker", ["dev"], None, common),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--livekit", type=int, default=7880, help="devserver port")
    parser.add_argument("--orchestrator", type=int, default=8000)
    ports = parser.parse_args()

    STATE.mkdir(exist_ok=True)
    redis = RedisServer(STATE / "redis", port=ports.redis_port)
    redis.start()
    started: list[tuple[Service, ManagedProcess]] = []
    print(f"redis         {redis.url}  (AOF, fsync every second; data in .local/redis)")
    try:
        for service in services(redis.url, ports):
            if not available(service.module):
                print(f"{service.name:<13} not built yet, skipped")
                continue
            process = ManagedProcess(service.name,
                                     [sys.executable, "-m", service.module, *service.args],
                                     env=service.env, log_path=STATE / f"{service.name}.log",
                                     cwd=ROOT)
            process.start()
            started.append((service, process))
            if service.port is not None:
                wait_for_port(service.port, process=process.process, timeout=60)
            where = service.url or "running"
            print(f"{service.name:<13} {where}  (log: .local/{service.name}.log)")
        print("\nThe stack is up. Ctrl-C stops everything.", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        for service, process in reversed(started):
            process.stop()
        redis.stop()
        print("stopped")


if __name__ == "__main__":
    main()
