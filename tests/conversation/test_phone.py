"""Which numbers may be dialled or transferred to, how they are shown, and what SIP statuses
mean for the visitor."""

from __future__ import annotations

import pytest

from conversation import CallOutcome, InvalidInput
from conversation.phone import dialable, outcome_of_sip_status, transfer_target

ALLOWED = {"US", "GB"}


@pytest.mark.parametrize(("typed", "e164"), [
    ("+12025550123", "+12025550123"),
    ("+1 (202) 555-0123", "+12025550123"),
    ("+44 20 7946 0000", "+442079460000"),
    ("+44.20.7946.0000", "+442079460000"),
])
def test_an_international_number_is_dialled_in_e164(typed: str, e164: str) -> None:
    assert dialable(typed, ALLOWED).e164 == e164


@pytest.mark.parametrize(("typed", "reason"), [
    ("2025550123", "must be an international number"),
    ("+1-800-FLOWERS", "must be an international number"),
    ("+1 202 555 0123 ext. 4", "must be an international number"),
    ("+999 123456", "unknown country code"),
    ("+1 202", "not a valid number for its country code"),
    ("+1 202 555 01234567", "not a valid number for its country code"),
    ("+33 6 12 34 56 78", "numbers in FR may not be dialled (countries allowed: GB, US)"),
    ("+800 1234 5678", "numbers in 001 may not be dialled"),
    ("+1 900 555 0123", "premium-rate numbers are never dialled"),
    ("+44 70 1123 4567", "personal (forwarded) numbers are never dialled"),
])
def test_a_number_that_may_not_be_dialled_is_refused_with_the_reason(typed: str,
                                                                     reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        dialable(typed, ALLOWED)

    assert refused.value.field == "phone_number"
    assert reason in refused.value.reason


def test_no_country_allowed_refuses_every_number() -> None:
    with pytest.raises(InvalidInput, match=r"countries allowed: none"):
        dialable("+12025550123", set())


def test_a_refusal_never_repeats_the_number() -> None:
    for typed in ("+33612345678", "+19005550123", "+1202555012", "+1 202 555 0123 x"):
        with pytest.raises(InvalidInput) as refused:
            dialable(typed, ALLOWED)
        digits = "".join(c for c in typed if c.isdigit())
        assert digits[-6:] not in refused.value.message


def test_a_number_shows_only_its_last_two_digits() -> None:
    number = dialable("+12025550123", ALLOWED)

    assert (number.ending, str(number), f"{number}") == ("23", "…23", "…23")
    assert "5550123" not in repr(number)


@pytest.mark.parametrize(("target", "uri"), [
    ("+12025550199", "tel:+12025550199"),
    ("tel:+1 202 555 0199", "tel:+12025550199"),
    ("TEL:+12025550199", "tel:+12025550199"),
    ("sip:support@pbx.example.com", "sip:support@pbx.example.com"),
    ("sips:queue-2@10.0.0.7:5061", "sips:queue-2@10.0.0.7:5061"),
    ("SIP:pbx.example.com", "sip:pbx.example.com"),
])
def test_a_transfer_goes_to_a_number_or_a_sip_uri(target: str, uri: str) -> None:
    assert transfer_target(target, ALLOWED).uri == uri


@pytest.mark.parametrize("target", [
    "tel:2025550199",
    "tel:+33612345678",
    "sip:support@pbx.example.com;transport=tcp",
    "sip:support@pbx.example.com?Subject=x",
    "sip:<support@pbx.example.com>",
    "sip:a b@pbx.example.com",
    "sip:support@pbx.example.com\r\nX-Injected: 1",
    "sip:" + "a" * 65 + "@pbx.example.com",
    "sip:" + "a." * 130 + "com",
    "https://pbx.example.com",
    "support",
])
def test_an_unsafe_or_disallowed_transfer_target_is_refused(target: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        transfer_target(target, ALLOWED)

    assert refused.value.field == "to"


@pytest.mark.parametrize(("status", "outcome"), [
    (486, CallOutcome.BUSY), (600, CallOutcome.BUSY),
    (603, CallOutcome.DECLINED), (607, CallOutcome.DECLINED), (608, CallOutcome.DECLINED),
    (408, CallOutcome.NO_ANSWER), (487, CallOutcome.NO_ANSWER),
    (480, CallOutcome.UNREACHABLE), (404, CallOutcome.UNREACHABLE),
    (410, CallOutcome.UNREACHABLE), (484, CallOutcome.UNREACHABLE),
    (604, CallOutcome.UNREACHABLE),
    (500, CallOutcome.FAILED), (503, CallOutcome.FAILED), (488, CallOutcome.FAILED),
    (None, CallOutcome.FAILED),
])
def test_a_sip_final_status_means_one_outcome(status: int | None, outcome: CallOutcome) -> None:
    assert outcome_of_sip_status(status) is outcome
