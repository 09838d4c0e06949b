"""Command line: `python -m devserver --port 7880 --keys devkey:secret --webhook URL`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from devserver.app import create_app
from devserver.context import Config


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument(
        "--keys",
        action="append",
        default=[],
        metavar="KEY:SECRET",
        help="API key and secret (repeatable); default devkey:secret",
    )
    parser.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="URL that receives webhook events (repeatable)",
    )
    parser.add_argument(
        "--sip-script",
        type=Path,
        default=None,
        metavar="FILE",
        help="how simulated phone numbers behave",
    )
    args = parser.parse_args(argv)
    keys: dict[str, str] = {}
    for pair in args.keys or ["devkey:secret"]:
        key, sep, secret = pair.partition(":")
        if not sep or not key or not secret:
            parser.error(f"--keys expects KEY:SECRET, got {pair!r}")
        keys[key] = secret
    return Config(
        keys=keys, host=args.host, port=args.port, webhooks=args.webhook, sip_script=args.sip_script
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    web.run_app(
        create_app(config), host=config.host, port=config.port, print=None, shutdown_timeout=2
    )


if __name__ == "__main__":
    main()
