"""`python -m modelserver --port 8900 [--latency] [--words-per-minute N]`: the scripted models
alone, for the offline demo and for benchmarks."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from modelserver.latency import HOSTED, INSTANT, Latency
from modelserver.server import ModelServer
from modelserver.speech import FASTEST_RATE, SLOWEST_RATE, SPEAKING_RATE, check_pace


def latency_from(args: argparse.Namespace) -> Latency:
    """`--latency` answers like hosted models; each `--*-latency-ms` sets one model's delay
    (the others keep `--latency`'s, or none)."""
    base = HOSTED if args.latency else INSTANT
    return Latency.from_ms(
        llm=base.llm_first_token * 1000 if args.llm_latency_ms is None else args.llm_latency_ms,
        tts=base.tts_first_byte * 1000 if args.tts_latency_ms is None else args.tts_latency_ms,
        stt=base.stt_result * 1000 if args.stt_latency_ms is None else args.stt_latency_ms)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency", action="store_true",
                        help=f"answer like hosted models ({HOSTED.describe()})")
    for model, what in (("llm", "the chat model's first token"),
                        ("tts", "the first byte of speech"), ("stt", "a transcription")):
        parser.add_argument(f"--{model}-latency-ms", type=float, default=None, metavar="MS",
                            help=f"milliseconds before {what}")
    parser.add_argument("--words-per-minute", type=int, default=SPEAKING_RATE, metavar="N",
                        help=f"the voice's pace, {SLOWEST_RATE} to {FASTEST_RATE} "
                             f"(default {SPEAKING_RATE})")
    args = parser.parse_args(argv)
    try:
        args.model_latency = latency_from(args)
        check_pace(args.words_per_minute)
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def _serve(host: str, port: int, latency: Latency, words_per_minute: int) -> None:
    server = ModelServer(host, port, latency=latency, words_per_minute=words_per_minute)
    await server.start()
    answers = "at once" if latency.instant else f"with latency: {latency.describe()}"
    print(f"scripted model server on {server.url}, answering {answers}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.aclose()


def main() -> None:
    args = parse_args()
    try:
        asyncio.run(_serve(args.host, args.port, args.model_latency, args.words_per_minute))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
