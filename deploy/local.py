"""`make run`: the whole local stack on loopback, each service a child process, stopped together."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import ManagedProcess, RedisServer, wait_for_port
from devserver.process import agents_status

ROOT = Path(__file__).resolve().parent.parent
AGENT_NAME = "baton-voice"
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


def model_services(ports: argparse.Namespace) -> tuple[list[Service], dict[str, str]]:
    """Real models when OPENAI_API_KEY is set; otherwise the scripted test models, offline."""
    if os.environ.get("OPENAI_API_KEY"):
        return [], {}
    url = f"http://127.0.0.1:{ports.models}/v1"
    scripted = Service("models", "modelserver", ["--port", str(ports.models)], ports.models,
                       url=f"{url}  (scripted: no OPENAI_API_KEY set, so replies are canned "
                           "and the voice is espeak-ng)")
    return [scripted], {"OPENAI_API_KEY": "scripted-offline", "OPENAI_BASE_URL": url}


def services(redis_url: str, ports: argparse.Namespace) -> list[Service]:
    models, model_env = model_services(ports)
    livekit = {"LIVEKIT_URL": f"ws://127.0.0.1:{ports.livekit}",
               "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}
    orchestrator_url = f"http://127.0.0.1:{ports.orchestrator}"
    common = {"REDIS_URL": redis_url, "BATON_ENV": "development", **livekit}
    return [
        *models,
        Service("devserver", "devserver",
                ["--port", str(ports.livekit), "--keys", "devkey:secret",
                 "--webhook", f"{orchestrator_url}/v1/livekit/webhook"],
                ports.livekit, url=livekit["LIVEKIT_URL"]),
        Service("orchestrator", "orchestrator", [], ports.orchestrator,
                {**common, "BATON_PORT": str(ports.orchestrator),
                 "BATON_API_KEYS": os.environ.get("BATON_API_KEYS", "dev-api-key")},
                url=orchestrator_url),
        Service("worker", "worker", ["start"], None,
                {**common, **model_env, "BATON_MAX_JOBS": "4", "BATON_HEALTH_PORT": "0"}),
    ]


# The devserver's keys are LiveKit's own development pair (`livekit-server --dev`); PyJWT warns
# that "secret" is short on every token, which says nothing useful here.
warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")


def wait_for_worker(livekit_port: int, agent_name: str, process: ManagedProcess,
                    timeout: float = 120.0) -> None:
    """Block until the devserver lists a registered worker for `agent_name`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running:
            raise RuntimeError("the worker exited; see .local/worker.log")
        workers = agents_status(f"http://127.0.0.1:{livekit_port}", "devkey", "secret")["workers"]
        if any(w["agent_name"] == agent_name for w in workers):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no worker registered within {timeout:.0f}s; see .local/worker.log")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--livekit", type=int, default=7880, help="devserver port")
    parser.add_argument("--orchestrator", type=int, default=8000)
    parser.add_argument("--models", type=int, default=8900, help="scripted model server port")
    ports = parser.parse_args()

    chosen = services("", ports)
    taken = [port for port in (ports.redis_port, *(s.port for s in chosen if s.port))
             if not port_is_free(port)]
    if taken:
        raise SystemExit(f"port(s) {', '.join(map(str, taken))} already in use: is another "
                         "`make run` still up? Stop it, or pick other ports (--help).")
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
            elif service.name == "worker":
                wait_for_worker(ports.livekit, AGENT_NAME, process)
            where = service.url or "running"
            print(f"{service.name:<13} {where}  (log: .local/{service.name}.log)")
        print(f"""
The stack is up. Ctrl-C stops everything.
  API and its docs:  http://127.0.0.1:{ports.orchestrator}/docs  (API key: dev-api-key)
  try it:            .venv/bin/python -m deploy.demo   (a chat continued by voice)""",
              flush=True)
        stop = threading.Event()
        # Set explicitly: a shell starting us in the background leaves SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
    finally:
        for _service, process in reversed(started):
            process.stop()
        redis.stop()
        print("stopped")


if __name__ == "__main__":
    main()
