"""The devserver's aiohttp application: configuration, shared context and route installation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from livekit.protocol import models

from devserver import agents, dispatch, signaling, sip
from devserver.context import CTX_KEY, Config, ServerContext
from devserver.media import forward_audio_as_it_comes, use_fast_audio_level
from devserver.participant import Participant
from devserver.rooms import Room, RoomManager
from devserver.roomservice import RoomService
from devserver.twirp import TwirpRouter
from devserver.webhooks import WebhookSender

log = logging.getLogger("devserver")


def create_app(config: Config) -> web.Application:
    use_fast_audio_level()
    forward_audio_as_it_comes()
    app = web.Application(client_max_size=1024 * 1024)
    rooms = RoomManager()
    webhooks = WebhookSender(config.webhooks, config.api_key, config.api_secret)
    ctx = ServerContext(
        config=config, rooms=rooms, router=TwirpRouter(lambda t: ctx.verify(t)), webhooks=webhooks
    )
    app[CTX_KEY] = ctx
    webhooks.attach(rooms)
    _log_room_events(rooms)
    ctx.router.add_service("livekit.RoomService", RoomService(ctx).handlers())
    signaling.install(app, ctx)

    # Modules of the agents/SIP side add themselves here, each with one install(app, ctx) line.
    agents.install(app, ctx)
    dispatch.install(app, ctx)
    sip.install(app, ctx)

    ctx.router.install(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    ctx = app[CTX_KEY]
    await ctx.rooms.close()
    await ctx.webhooks.close()


def _log_room_events(rooms: RoomManager) -> None:
    """One log line per participant and track event (rooms log their own start and finish)."""

    def participant(verb: str) -> Callable[[Room, Participant], None]:
        return lambda r, p: log.info(
            "participant %s %s (%s, %s) in %s",
            verb,
            p.identity,
            p.sid,
            models.ParticipantInfo.Kind.Name(p.kind).lower(),
            r.name,
        )

    def track(verb: str) -> Callable[[Room, Participant, models.TrackInfo], None]:
        return lambda r, p, t: log.info(
            "track %s %s (%s) by %s in %s", verb, t.sid, t.name, p.identity, r.name
        )

    rooms.on("participant_joined", participant("joined"))
    rooms.on("participant_left", participant("left"))
    rooms.on("participant_updated", participant("updated"))
    rooms.on("track_published", track("published"))
    rooms.on("track_unpublished", track("unpublished"))
