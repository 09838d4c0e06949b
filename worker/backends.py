"""The business systems behind the tools: the interface a deployment implements, and the
example used in development.

A deployment names its backend class in `BATON_TOOL_BACKEND` ("package.module:Class"); the class
is built with no arguments once per job. Every call carries the conversation's verified
identity (None when the chat side verified nobody), so the backend can refuse what that
customer may not see; tools that change something also carry an idempotency key, the model's
tool call id, so a retried call is done once.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Protocol

from conversation import VerifiedIdentity

PLANS = {"basic": 9.0, "plus": 19.0, "pro": 49.0}
"""Monthly list prices of the example catalogue."""

EXAMPLE_BACKEND = "worker.backends:ExampleBackend"


class Refused(Exception):
    """The backend will not do this for this caller; the message is safe to say to them."""


class Backend(Protocol):
    """Each call returns JSON-ready data or raises Refused."""

    async def lookup_order(self, order_id: str, *,
                           caller: VerifiedIdentity | None) -> dict[str, Any]: ...

    async def quote_price(self, plan: str, months: int, *,
                          caller: VerifiedIdentity | None) -> dict[str, Any]: ...

    async def book_callback(self, when: str, phone: str | None, *,
                            caller: VerifiedIdentity | None,
                            idempotency_key: str) -> dict[str, Any]: ...


DEMO_ORDERS: Mapping[str, str] = {"A1234": "demo-customer-1", "A1235": "demo-customer-1",
                                  "B2001": "demo-customer-2"}
"""Order id -> the customer who placed it, for the demo."""


class ExampleBackend:
    """Deterministic stand-in data, so a demo gives the same answers every time. Development
    only: the settings refuse it outside BATON_ENV=development."""

    def __init__(self, orders: Mapping[str, str] = DEMO_ORDERS) -> None:
        self.orders = orders

    async def lookup_order(self, order_id: str, *,
                           caller: VerifiedIdentity | None) -> dict[str, Any]:
        if caller is None:
            raise Refused("Orders can only be looked up for a signed-in customer; ask the "
                          "visitor to sign in to the chat first.")
        # The same answer for an order that exists and one of another customer, so the tool
        # tells nobody which order numbers exist.
        if self.orders.get(order_id) != caller.subject:
            raise Refused(f"There is no order {order_id} on this customer's account.")
        digest = int(hashlib.sha256(order_id.encode()).hexdigest(), 16)
        status = ("processing", "shipped", "delivered")[digest % 3]
        placed = date(2026, 1, 1) + timedelta(days=digest % 300)
        return {"order_id": order_id, "status": status, "placed_on": placed.isoformat(),
                "items": 1 + digest % 4}

    async def quote_price(self, plan: str, months: int, *,
                          caller: VerifiedIdentity | None) -> dict[str, Any]:
        monthly = PLANS[plan]
        discount = 0.15 if months >= 12 else 0.05 if months >= 6 else 0.0
        total = round(monthly * months * (1 - discount), 2)
        return {"plan": plan, "months": months, "monthly_list_price": monthly,
                "discount": discount, "total": total, "currency": "EUR"}

    async def book_callback(self, when: str, phone: str | None, *,
                            caller: VerifiedIdentity | None,
                            idempotency_key: str) -> dict[str, Any]:
        reference = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8].upper()
        # The number is confirmed by its last digits only: results are logged and shown.
        return {"reference": f"CB-{reference}", "when": when, "booked": True,
                "phone_ending": phone[-2:] if phone else None}


def load_backend(path: str) -> Backend:
    """Build the backend class named "package.module:Class"."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"BATON_TOOL_BACKEND must be 'package.module:Class', not {path!r}")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    backend: Backend = backend_class()
    return backend
