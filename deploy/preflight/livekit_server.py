"""LiveKit's server API as the orchestrator calls it: reachable and taking its keys, and the
SIP outbound trunk dial-out leaves through."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from livekit import api
from livekit.protocol import room as proto_room
from livekit.protocol import sip

from deploy.preflight.results import Result, fail, ok, redacted, unknown
from orchestrator.probes import probe_room_name
from orchestrator.settings import Settings

FAILURES = (api.TwirpError, aiohttp.ClientError, TimeoutError, OSError)
"""What a server API call raises when LiveKit refuses it or cannot be reached."""


@contextlib.asynccontextmanager
async def server_api(settings: Settings) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(settings.livekit_api_endpoint, settings.livekit_api_key,
                            settings.livekit_api_secret.get_secret_value(),
                            timeout=aiohttp.ClientTimeout(total=settings.livekit_timeout),
                            failover=False)
    try:
        yield client
    finally:
        await client.aclose()


def trouble(exc: BaseException, settings: Settings) -> str:
    """What a failed call says about the deployment, and what to do about it."""
    where = redacted(settings.livekit_api_endpoint)
    if not isinstance(exc, api.TwirpError):
        return (f"LiveKit is unreachable at {where} ({type(exc).__name__}): check LIVEKIT_URL "
                "(LIVEKIT_API_URL if the orchestrator calls LiveKit at another address), that "
                "the server runs, and that this network reaches it")
    if exc.code == api.TwirpErrorCode.UNAUTHENTICATED or exc.status == 401:
        return (f"LiveKit at {where} refused the API key {settings.livekit_api_key!r} or its "
                f"secret ({exc.status} {exc.code}): LIVEKIT_API_KEY and LIVEKIT_API_SECRET must "
                "be a pair in LiveKit's keys (livekit.yaml `keys`, the Helm values' keys secret)")
    return f"LiveKit at {where} answered {exc.status} {exc.code}: {exc.message}"


async def check_server(livekit: api.LiveKitAPI, settings: Settings) -> Result:
    """One read-only call, for a room that does not exist: reachable and the keys taken."""
    try:
        await livekit.room.list_rooms(proto_room.ListRoomsRequest(names=[probe_room_name()]))
    except FAILURES as exc:
        return fail("livekit", trouble(exc, settings))
    return ok("livekit", f"{redacted(settings.livekit_api_endpoint)} takes the API key "
                         f"{settings.livekit_api_key!r}")


async def check_trunk(livekit: api.LiveKitAPI | None, settings: Settings) -> Result:
    """The outbound trunk dial-out and on-call humans leave through, when one is named."""
    name = "sip-trunk"
    trunk = settings.sip_outbound_trunk
    if trunk is None:
        return ok(name, "dial-out is off (BATON_SIP_OUTBOUND_TRUNK is not set)")
    if livekit is None:
        return unknown(name, "cannot tell while LiveKit is unreachable or refuses the keys "
                             "(see livekit)")
    try:
        found = await livekit.sip.list_outbound_trunk(
            sip.ListSIPOutboundTrunkRequest(trunk_ids=[trunk]))
    except FAILURES as exc:
        return fail(name, trouble(exc, settings))
    if not any(item.sip_trunk_id == trunk for item in found.items):
        return fail(name, f"LiveKit has no outbound trunk {trunk!r} (BATON_SIP_OUTBOUND_TRUNK): "
                          "create it (deploy/README.md, SIP: `lk sip outbound create`) and set "
                          "the id `lk sip outbound list` prints")
    if not settings.dial_countries:
        return ok(name, f"outbound trunk {trunk!r} exists; dial-out stays off until "
                        "BATON_DIAL_COUNTRIES names the countries it may call")
    return ok(name, f"outbound trunk {trunk!r} exists; dial-out to "
                    f"{','.join(settings.dial_countries)}")
