"""After the fact: the site records a verification of the visitor's identity, whether the
issue was resolved, and the visitor's satisfaction; each is logged and counted by the path
the conversation took."""

from __future__ import annotations

from fastapi import APIRouter

from conversation import CsatEvent, ResolutionEvent, Transition, VerificationEvent
from conversation.paths import channel_path
from orchestrator.deps import ApiKey, ServicesDep
from orchestrator.errors import responses
from orchestrator.routers.conversations import ConversationId
from orchestrator.schemas import ConversationOut, IdentityIn, ReportCsat, Reported, ReportResolution
from orchestrator.services import Services

router = APIRouter(prefix="/v1/conversations", tags=["outcomes"])


@router.post("/{conversation_id}/identity", dependencies=[ApiKey],
             responses=responses(401, 404, 413, 422, 503))
async def record_verification(conversation_id: ConversationId, body: IdentityIn,
                              services: ServicesDep) -> ConversationOut:
    """The chat side verified the visitor (again). Every channel trusts it from now on; one
    made while a valid verification was on the record counts as a re-verification, which
    carrying the identity across channels should make rare."""
    before = await services.store.get(conversation_id)
    event = VerificationEvent(subject=body.subject, method=body.method,
                              verified_at=body.verified_at)
    await services.store.append(conversation_id, event, transition=Transition(
        to=None, from_=None, set={"subject": body.subject, "method": body.method,
                                  "verified_at": body.verified_at.isoformat()}))
    if before.identity is not None:
        services.metrics.reverifications.inc()
    return ConversationOut.of(await services.store.get(conversation_id))


@router.post("/{conversation_id}/resolution", status_code=201, dependencies=[ApiKey],
             responses=responses(401, 404, 413, 422, 503))
async def report_resolution(conversation_id: ConversationId, body: ReportResolution,
                            services: ServicesDep) -> Reported:
    path = await _path(services, conversation_id)
    appended = await services.store.append(conversation_id,
                                           ResolutionEvent(resolved=body.resolved))
    services.metrics.resolutions.labels(path, "true" if body.resolved else "false").inc()
    return Reported(seq=appended.seq, path=path)


@router.post("/{conversation_id}/csat", status_code=201, dependencies=[ApiKey],
             responses=responses(401, 404, 413, 422, 503))
async def report_csat(conversation_id: ConversationId, body: ReportCsat,
                      services: ServicesDep) -> Reported:
    path = await _path(services, conversation_id)
    appended = await services.store.append(conversation_id, CsatEvent(score=body.score))
    services.metrics.csat.labels(path).observe(body.score)
    return Reported(seq=appended.seq, path=path)


async def _path(services: Services, conversation_id: str) -> str:
    return channel_path(await services.store.read(conversation_id))
