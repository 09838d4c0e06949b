"""Redis as both services use it: reachable, and persisting with the append-only file."""

from __future__ import annotations

from redis.exceptions import AuthenticationError, RedisError, ResponseError

from conversation.redisclient import RedisClient
from deploy.preflight.results import Result, fail, ok, redacted, unknown
from orchestrator.settings import Settings

SAFE_FSYNC = {"everysec", "always"}
SOCKET_TIMEOUT = 5.0


async def check_redis(settings: Settings) -> tuple[list[Result], bool]:
    """The `redis` and `redis-aof` results, and whether Redis answered."""
    where = redacted(settings.redis_url)
    client = settings.redis_client(socket_timeout=SOCKET_TIMEOUT,
                                   socket_connect_timeout=SOCKET_TIMEOUT)
    try:
        try:
            await client.ping()
        except AuthenticationError:
            return [fail("redis", f"Redis at {where} refused the credentials in REDIS_URL"),
                    unknown("redis-aof", "cannot tell without Redis")], False
        except (RedisError, OSError) as exc:
            return [fail("redis", f"Redis is unreachable at {where} ({type(exc).__name__}): "
                                  "check REDIS_URL, that Redis runs, and that this network "
                                  "reaches it"),
                    unknown("redis-aof", "cannot tell without Redis")], False
        return [ok("redis", where), await _aof(client)], True
    finally:
        await client.aclose()


async def _aof(client: RedisClient) -> Result:
    name = "redis-aof"
    try:
        config = await client.config_get("append*")
    except ResponseError:
        return unknown(name, "cannot tell: this Redis refuses CONFIG GET (a managed Redis "
                             "renames or forbids it); check in its console or documentation "
                             "that persistence is the append-only file with fsync every "
                             "second (or a replica set that survives a node's loss)")
    except RedisError as exc:
        return unknown(name, f"cannot tell: CONFIG GET failed ({type(exc).__name__})")
    appendonly = _text(config.get("appendonly"))
    fsync = _text(config.get("appendfsync"))
    if appendonly != "yes":
        return fail(name, "the append-only file is off (appendonly no): a crash loses every "
                          "write since the last snapshot; set `appendonly yes` and `appendfsync "
                          "everysec` in redis.conf (or CONFIG SET, then CONFIG REWRITE)")
    if fsync not in SAFE_FSYNC:
        return fail(name, f"appendfsync is {fsync!r}: the OS decides when writes reach the "
                          "disk; set `appendfsync everysec`")
    return ok(name, f"appendonly yes, appendfsync {fsync}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
