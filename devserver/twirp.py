"""Twirp over aiohttp: protobuf/JSON codecs and a router of livekit.protocol services."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from devserver.auth import Claims
from devserver.twirperror import TwirpError

__all__ = ["Handler", "TokenVerifier", "TwirpError", "TwirpRouter"]

log = logging.getLogger("devserver.twirp")

Handler = Callable[[Message, Claims], Awaitable[Message]]
TokenVerifier = Callable[[str], Claims]


class TwirpRouter:
    """Serves ``POST /twirp/{service}/{method}`` for the services added to it."""

    def __init__(self, verify: TokenVerifier) -> None:
        self._verify = verify
        self._methods: dict[tuple[str, str], tuple[type[Message], type[Message], Handler]] = {}

    def add_service(self, full_name: str, handlers: Mapping[str, Handler]) -> None:
        """Register handlers by method name; types come from the service's descriptor."""
        service = descriptor_pool.Default().FindServiceByName(full_name)
        for name, handler in handlers.items():
            method = service.methods_by_name.get(name)
            if method is None:
                raise ValueError(f"{full_name} has no method {name}")
            request_type = message_factory.GetMessageClass(method.input_type)
            response_type = message_factory.GetMessageClass(method.output_type)
            self._methods[(full_name, name)] = (request_type, response_type, handler)

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/twirp/{service}/{method}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except TwirpError as err:
            log.info("twirp %s -> %s", request.path, err)
            return err.to_response()
        except Exception:
            log.exception("twirp %s failed", request.path)
            return TwirpError("internal", "internal error").to_response()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise TwirpError("bad_route", f"unsupported method {request.method} (only POST)")
        key = (request.match_info["service"], request.match_info["method"])
        entry = self._methods.get(key)
        if entry is None:
            raise TwirpError("bad_route", f"no handler for path {request.path}")
        request_type, _, handler = entry
        claims = self._verify(_bearer_token(request))
        content_type = request.content_type
        raw = await request.read()
        if content_type == "application/protobuf":
            message = _decode_protobuf(request_type, raw)
        elif content_type == "application/json":
            message = _decode_json(request_type, raw)
        else:
            raise TwirpError("bad_route", f"unexpected Content-Type: {content_type!r}")
        result = await handler(message, claims)
        if content_type == "application/protobuf":
            return web.Response(body=result.SerializeToString(), content_type=content_type)
        body = json_format.MessageToJson(result, preserving_proto_field_name=False)
        return web.Response(text=body, content_type="application/json")


def _bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header:
        raise TwirpError("unauthenticated", "permissions denied")
    if not header.startswith("Bearer "):
        raise TwirpError("unauthenticated", "invalid authorization header. Must start with Bearer ")
    return header[len("Bearer ") :]


def _decode_protobuf(request_type: type[Message], raw: bytes) -> Message:
    message = request_type()
    try:
        message.ParseFromString(raw)
    except DecodeError as err:
        raise TwirpError("malformed", f"the request could not be decoded: {err}") from err
    return message


def _decode_json(request_type: type[Message], raw: bytes) -> Message:
    message = request_type()
    try:
        json_format.Parse(raw.decode("utf-8") or "{}", message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TwirpError("malformed", f"the json request could not be decoded: {err}") from err
    return message
