"""`make run`: the whole local stack on loopback, each service a child process, stopped together."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import warnings
from pathlib import Path

from deploy import phones
from deploy.stack import DEV_API_KEY, Ports, Service, Stack

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"

# The devserver's keys are LiveKit's own development pair (`livekit-server --dev`); PyJWT warns
# that "secret" is short on every token, which says nothing useful here.
warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")

OFFLINE = """
OFFLINE DEMO: no OPENAI_API_KEY is set, so the assistant runs on scripted models (canned
replies, an espeak-ng voice, a fixed transcript of whatever you say). For real models, stop
this (Ctrl-C), `export OPENAI_API_KEY=...` (and OPENAI_BASE_URL for any OpenAI-compatible
server), then `make run` again."""


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def report(service: Service) -> None:
    where = service.url or "running"
    log = f".local/{service.name.replace(' ', '-')}.log"
    print(f"{service.name:<13} {where}  (log: {log})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--livekit", type=int, default=7880, help="devserver port")
    parser.add_argument("--orchestrator", type=int, default=8000)
    parser.add_argument("--models", type=int, default=8900, help="scripted model server port")
    args = parser.parse_args()

    stack = Stack(STATE, ports=Ports(args.redis_port, args.livekit, args.orchestrator,
                                     args.models),
                  api_key=os.environ.get("BATON_API_KEYS", DEV_API_KEY))
    wanted = [args.redis_port, args.livekit, args.orchestrator] + \
        ([args.models] if stack.offline else [])
    taken = [port for port in wanted if not port_is_free(port)]
    if taken:
        raise SystemExit(f"port(s) {', '.join(map(str, taken))} already in use: is another "
                         "`make run` still up? Stop it, or pick other ports (--help).")
    print(f"redis         {stack.redis.url}  (AOF, fsync every second; data in .local/redis)")
    stack.start(report)
    try:
        human = stack.humans[0]
        numbers = "\n".join(f"    {phone.number}  {phone.outcome.replace('_', ' ')}"
                            for phone in phones.PHONES)
        print(f"""
The stack is up. Ctrl-C stops everything.
  the widget demo:   {stack.demo_url}   (chat, then "Switch to voice")
  the agents' desk:  {stack.dashboard_url}   (sign in as {human.username}, password \
{human.password}; keep it open, then "Talk to a person" in a call)
  API and its docs:  {stack.orchestrator_url}/docs  (API key: {DEV_API_KEY})
  from a terminal:   .venv/bin/python -m deploy.demo   (a chat continued by voice)

"Call me instead" dials simulated phones (no real call is made):
{numbers}
    any other US number answers and stays quiet""",
              flush=True)
        if stack.offline:
            print(OFFLINE, flush=True)
        stop = threading.Event()
        # Set explicitly: a shell starting us in the background leaves SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
    finally:
        stack.stop()
        print("stopped")


if __name__ == "__main__":
    main()
