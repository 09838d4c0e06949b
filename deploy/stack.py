"""The whole local stack as child processes on loopback ports: Redis, the devserver (with simulated
phones, `deploy/phones.py`), the models (scripted unless real ones are configured), the
orchestrator (dial-out on, demo human agents signed in on the dashboard), the voice worker and
the chat agent. `make run` shows it; the browser tests and `bench.widget` run on it."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy import phones
from deploy.processes import ManagedProcess, RedisServer, free_port, wait_for_port
from devserver.process import API_KEY, API_SECRET, agents_status
from modelserver.speech import SPEAKING_RATE
from orchestrator.humans import hash_password

DEV_API_KEY = "dev-api-key"
OFFLINE_MODELS_KEY = "scripted-offline"


@dataclass(frozen=True)
class DemoHuman:
    """A human agent of the local stack. The password is a demo's, printed by `make run`;
    never a real secret."""

    username: str
    name: str
    password: str


DEMO_HUMANS = (DemoHuman("dana", "Dana", "baton-demo"),)


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int | None
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None


@dataclass
class Ports:
    """0 picks a free port."""

    redis: int = 0
    livekit: int = 0
    orchestrator: int = 0
    models: int = 0

    def chosen(self) -> Ports:
        return Ports(*(port or free_port() for port in (self.redis, self.livekit,
                                                         self.orchestrator, self.models)))


def real_models() -> dict[str, str]:
    """The model provider from this environment, or nothing: then the scripted models run."""
    if not os.environ.get("OPENAI_API_KEY"):
        return {}
    return {name: os.environ[name] for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL")
            if name in os.environ}


class Stack:
    """Starts the services in order, each once the one before it is ready; stops them all."""

    def __init__(self, directory: Path, *, ports: Ports | None = None,
                 agent_name: str = "baton-voice", models: Mapping[str, str] | None = None,
                 api_key: str = DEV_API_KEY, orchestrator_env: Mapping[str, str] | None = None,
                 worker_env: Mapping[str, str] | None = None,
                 chat_env: Mapping[str, str] | None = None,
                 humans: tuple[DemoHuman, ...] = DEMO_HUMANS,
                 words_per_minute: int = SPEAKING_RATE) -> None:
        self.directory = directory
        self.words_per_minute = words_per_minute
        self.ports = (ports or Ports()).chosen()
        self.agent_name = agent_name
        self.models = dict(models) if models is not None else real_models()
        self.api_key = api_key
        self._extra = {"orchestrator": dict(orchestrator_env or {}),
                       "worker": dict(worker_env or {}), "chat": dict(chat_env or {})}
        self.redis = RedisServer(directory / "redis", port=self.ports.redis)
        self.humans = humans
        # Hashed once, as an operator would before putting them in BATON_HUMANS.
        self._accounts = json.dumps([
            {"username": h.username, "name": h.name, "password_hash": hash_password(h.password)}
            for h in humans])
        self.phone_script = directory / "phones" / "phones.json"
        self.trunk_id: str | None = None
        """The devserver's outbound trunk, made once it is up; dial-out leaves through it."""
        self.started: list[tuple[Service, ManagedProcess]] = []

    @property
    def offline(self) -> bool:
        return not self.models

    @property
    def orchestrator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.orchestrator}"

    @property
    def demo_url(self) -> str:
        return f"{self.orchestrator_url}/demo/"

    @property
    def dashboard_url(self) -> str:
        return f"{self.orchestrator_url}/dashboard/"

    @property
    def livekit_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports.livekit}"

    @property
    def models_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.models}/v1"

    def livekit_env(self) -> dict[str, str]:
        return {"LIVEKIT_URL": self.livekit_url, "LIVEKIT_API_KEY": API_KEY,
                "LIVEKIT_API_SECRET": API_SECRET}

    def services(self) -> list[Service]:
        model_env = self.models or {"OPENAI_API_KEY": OFFLINE_MODELS_KEY,
                                    "OPENAI_BASE_URL": self.models_url}
        common = {"REDIS_URL": self.redis.url, "BATON_ENV": "development",
                  "BATON_AGENT_NAME": self.agent_name}
        python = [sys.executable, "-m"]
        scripted = [] if self.models else [Service(
            "models", [*python, "modelserver", "--port", str(self.ports.models),
                       "--words-per-minute", str(self.words_per_minute)],
            self.ports.models, url=f"{self.models_url}  (scripted: no OPENAI_API_KEY set, so "
                                   "replies are canned and the voice is espeak-ng)")]
        return [
            *scripted,
            Service("devserver", [*python, "devserver", "--port", str(self.ports.livekit),
                                  "--keys", f"{API_KEY}:{API_SECRET}", "--webhook",
                                  f"{self.orchestrator_url}/v1/livekit/webhook",
                                  "--sip-script", str(self.phone_script)],
                    self.ports.livekit, url=self.livekit_url),
            Service("orchestrator", [*python, "orchestrator"], self.ports.orchestrator,
                    {**common, **self.livekit_env(), "BATON_PORT": str(self.ports.orchestrator),
                     "BATON_API_KEYS": self.api_key,
                     "BATON_DEMO_OFFLINE": str(self.offline).lower(),
                     "BATON_HUMANS": self._accounts, **self.dial_env(),
                     **self._extra["orchestrator"]},
                    url=self.orchestrator_url),
            Service("worker", [*python, "worker", "start"], None,
                    {**common, **self.livekit_env(), **model_env, "BATON_MAX_JOBS": "4",
                     "BATON_HEALTH_PORT": "0", **self._extra["worker"]}),
            Service("chat agent", [*python, "worker.chat"], None,
                    {**common, **model_env, **self._extra["chat"]}),
        ]

    def dial_env(self) -> dict[str, str]:
        """Dial-out on, through the devserver's simulated phones: a short ring, and room for
        a newcomer to try every demo number in one conversation."""
        if self.trunk_id is None:
            return {}
        return {"BATON_SIP_OUTBOUND_TRUNK": self.trunk_id,
                "BATON_DIAL_COUNTRIES": phones.DIAL_COUNTRIES,
                "BATON_DIAL_RINGING_TIMEOUT": "10",
                "BATON_DIAL_ATTEMPTS_PER_CONVERSATION": "10"}

    def start(self, report: Callable[[Service], None] = lambda _service: None) -> None:
        """Start everything in order; on any failure, stop what started and raise."""
        self.directory.mkdir(parents=True, exist_ok=True)
        phones.write_script(self.phone_script.parent)
        try:
            self.redis.start()
            for name in [service.name for service in self.services()]:
                # Built now: a service's settings may name what one before it made (the trunk).
                service = next(s for s in self.services() if s.name == name)
                process = ManagedProcess(service.name, service.argv, env=service.env,
                                         log_path=self.log_path(service.name))
                process.start()
                self.started.append((service, process))
                if service.port is not None:
                    wait_for_port(service.port, process=process.process, timeout=60)
                elif service.name == "worker":
                    self.wait_for_worker(process)
                if service.name == "devserver":
                    self.trunk_id = phones.create_trunk(
                        f"http://127.0.0.1:{self.ports.livekit}", API_KEY, API_SECRET)
                report(service)
        except BaseException:
            self.stop()
            raise

    def log_path(self, name: str) -> Path:
        return self.directory / f"{name.replace(' ', '-')}.log"

    def wait_for_worker(self, process: ManagedProcess, timeout: float = 120.0) -> None:
        """Block until the devserver lists a registered worker for the agent name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.running:
                raise RuntimeError(f"the worker exited; see {self.log_path('worker')}")
            workers = agents_status(f"http://127.0.0.1:{self.ports.livekit}", API_KEY,
                                    API_SECRET)["workers"]
            if any(w["agent_name"] == self.agent_name for w in workers):
                return
            time.sleep(0.25)
        raise TimeoutError(f"no worker registered within {timeout:.0f}s; see "
                           f"{self.log_path('worker')}")

    def process(self, name: str) -> ManagedProcess:
        return next(process for service, process in self.started if service.name == name)

    def restart(self, name: str) -> None:
        """Start a service stopped with `process(name).stop()` again, and wait until it is
        ready (outage tests)."""
        service = next(service for service, _ in self.started if service.name == name)
        process = self.process(name)
        process.start()
        if service.port is not None:
            wait_for_port(service.port, process=process.process, timeout=60)

    def stop(self) -> None:
        for _service, process in reversed(self.started):
            process.stop()
        self.started.clear()
        self.trunk_id = None
        self.redis.stop()
