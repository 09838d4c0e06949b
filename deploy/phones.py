"""The local stack's simulated phones: one demo number per dial-out outcome, the devserver's SIP
script that makes them behave so, and the outbound trunk dial-out leaves through. The demo page
lists the numbers; the browser tests dial them."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit import api as lk


@dataclass(frozen=True)
class DemoPhone:
    number: str
    outcome: str
    """The dial-out outcome it gives (`answered`, `busy`, ...)."""
    behaviour: dict[str, Any]
    """Its rule in the devserver's SIP script (devserver/README.md, "The SIP script")."""


SPOKEN = "Hello, I am calling about my order A1234. It still has not arrived."
SPEAKS_AFTER_S = 6
"""The answering phone says SPOKEN after the agent has had time to greet."""

PHONES = (
    DemoPhone("+12025550100", "answered",
              {"ring_after_ms": 300, "answer_after_ms": 2000, "audio": "answer.wav",
               "hangup_after_s": 40}),
    DemoPhone("+12025550486", "busy",
              {"ring_after_ms": 300, "answer_after_ms": 1500, "status": 486}),
    DemoPhone("+12025550408", "no_answer", {"ring_after_ms": 300, "no_answer": True}),
    DemoPhone("+12025550603", "declined",
              {"ring_after_ms": 300, "answer_after_ms": 2000, "status": 603}),
    DemoPhone("+12025550480", "unreachable",
              {"answer_after_ms": 500, "status": 480, "reason": "Temporarily Unavailable"}),
    DemoPhone("+12025550500", "failed",
              {"ring_after_ms": 300, "answer_after_ms": 800, "status": 500}),
)
"""US numbers of the 555 fictional range; any other allowed number answers and stays quiet."""

DIAL_COUNTRIES = "US"
TRUNK_NUMBER = "+12025550000"


def phone_for(outcome: str) -> str:
    return next(phone.number for phone in PHONES if phone.outcome == outcome)


def write_script(folder: Path) -> Path:
    """The SIP script, and the speech the answering phone plays, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    spoken, speech = folder / "spoken.wav", folder / "answer.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(spoken), SPOKEN], check=True)
    # Silence first: the agent speaks first when the phone is answered.
    subprocess.run(["sox", str(spoken), "-r", "48000", str(speech), "pad",
                    str(SPEAKS_AFTER_S), "0"], check=True)
    script = {"default": {"ring_after_ms": 300, "answer_after_ms": 1500,
                          "hangup_after_s": 40},
              "numbers": {phone.number: phone.behaviour for phone in PHONES}}
    path = folder / "phones.json"
    path.write_text(json.dumps(script, indent=2))
    return path


def create_trunk(http_url: str, api_key: str, api_secret: str) -> str:
    """An outbound trunk on the devserver for dial-out (Twirp in JSON, without an event loop:
    callers may run inside one); its id."""
    token = lk.AccessToken(api_key, api_secret).with_sip_grants(lk.SIPGrants(admin=True))
    body = {"trunk": {"name": "demo carrier", "address": "sip.carrier.example",
                      "numbers": [TRUNK_NUMBER]}}
    request = urllib.request.Request(
        f"{http_url}/twirp/livekit.SIP/CreateSIPOutboundTrunk", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token.to_jwt()}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(json.loads(reply.read())["sipTrunkId"])
