"""`python -m deploy.preflight`: check a deployment's wiring with the orchestrator's settings
(its environment variables) before the first visitor does. Each check prints `OK <name>` or
`FAIL <name>: <what is wrong and how to fix it>`, never a secret; the exit status is 0 only
when every check passed (see results.exit_status)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from deploy.preflight.environment import check_oncall_numbers, load
from deploy.preflight.livekit_server import check_server, check_trunk, server_api
from deploy.preflight.probe import check_probe_room
from deploy.preflight.redis_server import SOCKET_TIMEOUT, check_redis
from deploy.preflight.results import Result, Status, as_json, as_text, exit_status, unknown
from deploy.preflight.webhooks import check_endpoint
from orchestrator.settings import Settings


async def run(settings: Settings, *, orchestrator_url: str | None = None,
              wait: float = 10.0) -> list[Result]:
    """Every check that needs a network, in the order they print."""
    results, redis_up = await check_redis(settings)
    async with server_api(settings) as livekit:
        server = await check_server(livekit, settings)
        results.append(server)
        if orchestrator_url is not None:
            results.append(await check_endpoint(settings, orchestrator_url))
        if server.status is Status.OK:
            redis = settings.redis_client(socket_timeout=SOCKET_TIMEOUT) if redis_up else None
            try:
                results += await check_probe_room(livekit, redis, settings, wait)
            finally:
                if redis is not None:
                    await redis.aclose()
        else:
            blocked = "cannot tell while LiveKit is unreachable or refuses the keys (see livekit)"
            results += [unknown("agent", blocked), unknown("webhook-delivery", blocked)]
        results.append(await check_trunk(livekit if server.status is Status.OK else None,
                                         settings))
    results.append(check_oncall_numbers())
    return results


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.preflight",
        description="Check a Baton deployment's wiring, reading the orchestrator's settings "
                    "from the environment: LiveKit and its keys, a worker for the agent name, "
                    "webhooks, Redis and AOF, the SIP trunk, secrets.")
    parser.add_argument("--orchestrator-url", metavar="URL",
                        help="the orchestrator's base URL (https://baton.example.com): a test "
                             "webhook signed with LiveKit's keys is sent to its webhook route")
    parser.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                        help="how long a worker may take to take the probe job, and LiveKit to "
                             "deliver the probe room's webhook (default 10)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    loaded = load()
    results = list(loaded.results)
    if loaded.settings is not None:
        results += asyncio.run(run(loaded.settings, orchestrator_url=args.orchestrator_url,
                                   wait=args.wait))
    print(as_json(results) if args.json else as_text(results))
    return exit_status(results)


if __name__ == "__main__":
    sys.exit(main())
