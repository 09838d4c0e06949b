"""`python -m modelserver --port 8900`: the scripted models alone, for the offline demo."""

from __future__ import annotations

import argparse
import asyncio

from modelserver.server import ModelServer


async def _serve(host: str, port: int) -> None:
    server = ModelServer(host, port)
    await server.start()
    print(f"scripted model server on {server.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
