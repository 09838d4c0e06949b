"""The simulated phones of the phone tests: their numbers and the devserver's SIP script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ANSWERS = "+12025550100"
SLOW_TO_ANSWER = "+12025550101"
SPEAKS = "+12025550102"
"""Rings long enough for the agent to be in the room first, answers, says SPOKEN after a
pause that lets the agent greet, and hangs up later."""
RINGS_OUT = "+12025550199"
ANSWERS_IN_GB = "+442079460100"

SPOKEN = "I would like to change my plan to the yearly one"
SPEAKS_RINGS_MS = 3000
SPEAKS_AFTER_S = 7
SPEAKS_HANGS_UP_AFTER_S = 16

FAILURES = (486, 600, 603, 607, 608, 487, 480, 404, 410, 484, 604, 500, 503, 488)
"""Final statuses the numbers of `failing(status)` answer with."""


def failing(status: int) -> str:
    return f"+1202555{status:04d}"


TRANSFER_OK = "tel:+12025559200"
TRANSFER_EMPTY = "tel:+12025559204"
"""Succeeds with an empty response, as LiveKit server v1.13.5 answers."""
TRANSFER_REPORTED = "tel:+12025559480"
"""Fails in the response (STS_TRANSFER_FAILED, 480), without an error."""
TRANSFER_REFUSED = "tel:+12025559486"
"""Fails with an error (SIP 486), as any target no rule names."""

NUMBERS = (ANSWERS, SLOW_TO_ANSWER, SPEAKS, RINGS_OUT, ANSWERS_IN_GB,
           *(failing(status) for status in FAILURES),
           *(target.removeprefix("tel:") for target in (TRANSFER_OK, TRANSFER_EMPTY,
                                                       TRANSFER_REPORTED, TRANSFER_REFUSED)))


def write_script(folder: Path) -> Path:
    """The SIP script (and the speech the speaking phone plays) in `folder`."""
    spoken, speech = folder / "spoken.wav", folder / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(spoken), SPOKEN], check=True)
    # Silence first: the agent's first words come before the visitor speaks.
    subprocess.run(["sox", str(spoken), "-r", "48000", str(speech),
                    "pad", str(SPEAKS_AFTER_S), "0"], check=True)
    script = {
        "default": {"answer_after_ms": 50},
        "numbers": {
            ANSWERS: {"ring_after_ms": 20, "answer_after_ms": 100},
            ANSWERS_IN_GB: {"answer_after_ms": 100},
            SLOW_TO_ANSWER: {"ring_after_ms": 20, "answer_after_ms": 1500},
            SPEAKS: {"ring_after_ms": 20, "answer_after_ms": SPEAKS_RINGS_MS,
                     "audio": speech.name,
                     "hangup_after_s": SPEAKS_HANGS_UP_AFTER_S},
            RINGS_OUT: {"ring_after_ms": 20, "no_answer": True},
            **{failing(status): {"ring_after_ms": 20, "answer_after_ms": 100, "status": status}
               for status in FAILURES},
        },
        "transfers": {
            TRANSFER_OK: {"status": 200},
            TRANSFER_EMPTY: {"status": 200, "empty_response": True},
            TRANSFER_REPORTED: {"status": 480, "as_response": True},
        },
        "transfer_default": {"status": 486},
    }
    path = folder / "phones.yaml"
    path.write_text(yaml.safe_dump(script))
    return path
