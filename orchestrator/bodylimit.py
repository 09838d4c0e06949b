"""Refuses request bodies over the limit with 413, by Content-Length and while streaming."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import BodyTooLarge, error_response
from orchestrator.timing import waiting


class BodyLimitMiddleware:
    """Reads the body (at most `limit` bytes) before the app runs, then replays it.

    Buffering first means the app never sees a partial body, and a chunked upload that
    lies about its size is cut off at the limit rather than read to the end.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await error_response(BodyTooLarge(self.limit))(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            # Waiting for the client to send its body is not the orchestrator's own time.
            with waiting("body"):
                message = await receive()
            if message["type"] != "http.request":
                # The client went away before sending the whole body.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await error_response(BodyTooLarge(self.limit))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Later reads wait for the disconnect, which streaming responses listen for.
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
