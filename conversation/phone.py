"""Phone numbers and call outcomes: which numbers may be dialled or transferred to, how a
number may be shown, and what a SIP final status means for the visitor."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from conversation.errors import InvalidInput
from conversation.events import CallOutcome

MAX_NUMBER_CHARS = 32
MAX_TRANSFER_TARGET_CHARS = 256

# As people type numbers: a leading "+" and the country code, digits and separators. No
# letters (phonenumbers would read "1-800-FLOWERS" as digits) and no extensions.
_TYPED_NUMBER = re.compile(r"^\+[0-9][0-9 ().-]{0,30}$")

# A SIP URI without parameters or headers: an optional user of unreserved characters, a host
# name or IPv4 address, an optional port. Nothing that could end the URI in a REFER's
# Refer-To header (spaces, quotes, angle brackets, ';', '?').
_SIP_URI = re.compile(
    r"^sips?:(?:[A-Za-z0-9._~+-]{1,64}@)?"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*(?::[0-9]{1,5})?$")

# Numbers billed to the caller at a premium or shared with the owner, and personal numbers
# forwarded wherever their owner likes: the ways a paid call earns a fraudster money.
_REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal (forwarded)",
}

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


def known_region(code: str) -> bool:
    """An ISO 3166 region code phonenumbers knows numbers of (US, GB, FR, ...)."""
    return code in phonenumbers.SUPPORTED_REGIONS


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A number that may be dialled, in E.164. Shown as its last two digits only, so putting
    one in a log line or an f-string by mistake does not leak it."""

    e164: str
    region: str

    @property
    def ending(self) -> str:
        return self.e164[-2:]

    def __str__(self) -> str:
        return f"…{self.ending}"

    def __repr__(self) -> str:
        return f"PhoneNumber(…{self.ending}, {self.region})"


def dialable(text: str, allowed_regions: Collection[str], *,
             field: str = "phone_number") -> PhoneNumber:
    """The number in E.164 if it may be dialled, else InvalidInput saying why (and never
    repeating the number): not international, not valid for its country code, in a country
    not allowed, or of a kind that makes paid calls a fraud target."""
    if not _TYPED_NUMBER.fullmatch(text):
        raise InvalidInput(field, "must be an international number: '+', the country code and "
                                  "the number, with only digits, spaces and '().-'")
    try:
        parsed = phonenumbers.parse(text, None)
    except NumberParseException as exc:
        reason = _PARSE_ERRORS.get(exc.error_type, "not a phone number")
        raise InvalidInput(field, f"not a dialable phone number: {reason}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(field, "not a valid number for its country code")
    region = phonenumbers.region_code_for_number(parsed) or "none"
    if region not in allowed_regions:
        allowed = ", ".join(sorted(allowed_regions)) or "none"
        raise InvalidInput(field, f"numbers in {region} may not be dialled "
                                  f"(countries allowed: {allowed})")
    refused = _REFUSED_TYPES.get(phonenumbers.number_type(parsed))
    if refused is not None:
        raise InvalidInput(field, f"{refused} numbers are never dialled")
    return PhoneNumber(phonenumbers.format_number(parsed, PhoneNumberFormat.E164), region)


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """Where a cold transfer sends the phone visitor: a `tel:` URI in E.164 or a `sip:` URI."""

    uri: str
    number: PhoneNumber | None
    """The number when the target is one; a `sip:` URI goes wherever the trunk routes it."""

    def __str__(self) -> str:
        # sip: URIs may carry a number in their user part; neither kind is shown whole.
        return str(self.number) if self.number is not None else "sip:…"


def transfer_target(text: str, allowed_regions: Collection[str]) -> TransferTarget:
    """An E.164 number, a `tel:` URI holding one, or a `sip:`/`sips:` URI of bounded length and
    safe characters; numbers obey the same rules as dialling out."""
    if len(text) > MAX_TRANSFER_TARGET_CHARS:
        raise InvalidInput("to", f"must be at most {MAX_TRANSFER_TARGET_CHARS} characters")
    scheme, _, rest = text.partition(":")
    if text.startswith("+") or scheme.lower() == "tel":
        number = dialable(text if text.startswith("+") else rest, allowed_regions, field="to")
        return TransferTarget(f"tel:{number.e164}", number)
    if scheme.lower() in ("sip", "sips"):
        uri = f"{scheme.lower()}:{rest}"
        if not _SIP_URI.fullmatch(uri):
            raise InvalidInput("to", "a sip: URI must be sip:[user@]host[:port], the user of "
                                     "letters, digits and '._~+-', without parameters")
        return TransferTarget(uri, None)
    raise InvalidInput("to", "must be an E.164 number (+...), a tel: URI or a sip: URI")


# SIP final statuses a failed dial-out ends with (RFC 3261, 6665; LiveKit passes them on).
_OUTCOME_BY_SIP_STATUS = {
    486: CallOutcome.BUSY,          # Busy Here
    600: CallOutcome.BUSY,          # Busy Everywhere
    603: CallOutcome.DECLINED,      # Decline: the person rejected the call
    607: CallOutcome.DECLINED,      # Unwanted: rejected as spam
    608: CallOutcome.DECLINED,      # Rejected: by an intermediary (a call-blocking service)
    408: CallOutcome.NO_ANSWER,     # Request Timeout: rang out; LiveKit's ringing timeout too
    487: CallOutcome.NO_ANSWER,     # Request Terminated: cancelled while ringing
    480: CallOutcome.UNREACHABLE,   # Temporarily Unavailable: switched off, no signal
    404: CallOutcome.UNREACHABLE,   # Not Found: no such subscriber
    410: CallOutcome.UNREACHABLE,   # Gone: the number was disconnected
    484: CallOutcome.UNREACHABLE,   # Address Incomplete
    604: CallOutcome.UNREACHABLE,   # Does Not Exist Anywhere
}


def outcome_of_sip_status(status: int | None) -> CallOutcome:
    """What a failed call's final SIP status means for the visitor. Busy and declined are the
    person's answer; no answer is a phone that rang out; unreachable is a phone that could not
    ring at all; anything else (carrier errors, 5xx) is a failure, kept with its status."""
    if status is None:
        return CallOutcome.FAILED
    return _OUTCOME_BY_SIP_STATUS.get(status, CallOutcome.FAILED)
