"""A test webhook, signed as LiveKit signs them, sent straight to the orchestrator's URL: it
answers and takes the signature of these keys."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import timedelta

import aiohttp
from google.protobuf import json_format
from livekit import api
from livekit.protocol import models, webhook

from deploy.preflight.results import Result, fail, ok, redacted
from orchestrator.probes import probe_room_name
from orchestrator.settings import Settings

PATH = "/v1/livekit/webhook"
REQUEST_TIMEOUT = 5.0


def signed_event(settings: Settings) -> tuple[str, dict[str, str]]:
    """A probe room's room_started as LiveKit sends it: protobuf JSON, with a JWT of the API
    key carrying the body's sha256."""
    event = webhook.WebhookEvent(event="room_started", id=f"EV_preflight_{uuid.uuid4().hex}",
                                 created_at=int(time.time()),
                                 room=models.Room(name=probe_room_name()))
    body = json_format.MessageToJson(event, indent=None)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = (api.AccessToken(settings.livekit_api_key,
                             settings.livekit_api_secret.get_secret_value())
             .with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt())
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}


async def check_endpoint(settings: Settings, orchestrator_url: str) -> Result:
    name = "webhook-endpoint"
    url = orchestrator_url.rstrip("/") + PATH
    where = redacted(url)
    body, headers = signed_event(settings)
    limit = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=limit) as http, \
                http.post(url, data=body, headers=headers) as response:
            status = response.status
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return fail(name, f"the orchestrator is unreachable at {where} ({type(exc).__name__}): "
                          "check the URL, and that it is the one in LiveKit's webhook.urls")
    if status == 200 and _outcome(text) == "probe":
        return ok(name, f"{where} takes webhooks signed with {settings.livekit_api_key!r}")
    if status == 401:
        return fail(name, f"{where} refused the signature: that orchestrator has another "
                          "LIVEKIT_API_KEY or LIVEKIT_API_SECRET than these settings, so it "
                          "refuses LiveKit's webhooks too")
    if status in (404, 405):
        return fail(name, f"{where} has no webhook route ({status}): give the orchestrator's "
                          "base URL, the one that serves /readyz")
    if status == 503:
        return fail(name, f"{where} answered 503: the orchestrator cannot reach its Redis")
    return fail(name, f"{where} answered {status}, not as a Baton orchestrator does")


def _outcome(text: str) -> object:
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    return answer.get("outcome") if isinstance(answer, dict) else None
