"""Human agents sign in and out; the session is a cookie for the dashboard (and a token)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from orchestrator.deps import HUMAN_COOKIE, HumanDep, ServicesDep
from orchestrator.errors import Unauthorized, responses
from orchestrator.schemas import HumanOut, SignedIn, SignIn
from orchestrator.settings import Environment

router = APIRouter(prefix="/v1/humans", tags=["humans"])


@router.post("/sign-in", responses=responses(401, 413, 422, 429, 503))
async def sign_in(body: SignIn, services: ServicesDep, response: Response) -> SignedIn:
    """Wrong username and wrong password get the same answer, in the same time."""
    session = await services.humans.sign_in(body.username, body.password)
    if session is None:
        raise Unauthorized("wrong username or password")
    account = services.humans.accounts[session.username]
    await services.desk.signed_in(account.username, account.name)
    response.set_cookie(
        HUMAN_COOKIE, session.token, httponly=True, samesite="strict", path="/",
        max_age=int(services.settings.human_session_ttl.total_seconds()),
        secure=services.settings.env is not Environment.DEVELOPMENT)
    return SignedIn(username=account.username, name=account.name,
                    expires_at=session.expires_at, token=session.token)


@router.post("/sign-out", status_code=204, responses=responses(401, 503))
async def sign_out(human: HumanDep, request: Request, services: ServicesDep,
                   response: Response) -> None:
    token = request.cookies.get(HUMAN_COOKIE) or \
        request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    await services.humans.sign_out(token)
    await services.desk.gone(human.username)
    response.delete_cookie(HUMAN_COOKIE, path="/")


@router.get("/me", responses=responses(401, 503))
async def me(human: HumanDep) -> HumanOut:
    return HumanOut(username=human.username, name=human.name)
