"""`python -m worker.chat`: answer the visitors' typed messages until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server

from worker.backends import load_backend
from worker.chat.answer import Answerer
from worker.chat.consumer import READ_BLOCK, TurnConsumer
from worker.chat.settings import ChatSettings, load_chat_settings
from worker.models import language_model
from worker.settings import SettingsError

logger = logging.getLogger("baton.chat")


async def serve(settings: ChatSettings) -> None:
    # The socket timeout outlasts a blocking read, or an idle queue would read as an outage.
    redis = settings.redis_client(socket_timeout=READ_BLOCK + 5,
                                  socket_connect_timeout=2.0)
    model = language_model(settings)
    answerer = Answerer(settings.store(redis), model, load_backend(settings.tool_backend),
                        budget=settings.history_budget, timeout=settings.turn_timeout)
    consumer = TurnConsumer(redis, answerer, settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, consumer.stop)
    logger.info("chat agent %s taking turns", consumer.name)
    try:
        await consumer.run()
    finally:
        await model.aclose()
        await redis.aclose()
        logger.info("chat agent stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = load_chat_settings()
    except SettingsError as exc:
        sys.exit(str(exc))
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr="127.0.0.1" if
                          settings.environment == "development" else "0.0.0.0")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
