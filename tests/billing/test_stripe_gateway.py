"""The gateways behind one interface, chosen by name; Stripe's only with its key, and its
webhooks only with their secret."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import stripe

from billing.gateways import gateway_for
from billing.gateways.base import PaymentGateway
from billing.gateways.stripe import StripeGateway, subscription_state, tax_id_type
from billing.inbox import WebhookRefused, verify_stripe_event
from core.settings import Settings, load_settings
from tests.core.test_settings import PRODUCTION


def test_each_gateway_implements_the_interface(stripe_settings: Settings) -> None:
    stripe_gateway = gateway_for("stripe", stripe_settings)
    manual_gateway = gateway_for("manual", stripe_settings)
    assert isinstance(stripe_gateway, StripeGateway)
    assert isinstance(stripe_gateway, PaymentGateway)
    assert isinstance(manual_gateway, PaymentGateway)
    assert (stripe_gateway.name, manual_gateway.name) == ("stripe", "manual")


def test_stripe_without_a_key_is_a_configuration_error_not_a_fallback(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="JALON_STRIPE_SECRET_KEY"):
        gateway_for("stripe", replace(settings, stripe_secret_key=None))
    with pytest.raises(ValueError, match="unknown payment gateway"):
        gateway_for("paypal", settings)


def test_no_webhook_is_trusted_without_a_configured_secret() -> None:
    payload = json.dumps(
        {"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}}
    )
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_any")
    with pytest.raises(WebhookRefused):
        verify_stripe_event(payload.encode(), header, None)
    assert verify_stripe_event(payload.encode(), header, "whsec_any")["id"] == "evt_1"


def test_a_signed_payload_that_is_not_an_event_is_refused() -> None:
    payload = json.dumps({"id": "evt_1", "type": "invoice.paid"})
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_any")
    with pytest.raises(WebhookRefused):
        verify_stripe_event(payload.encode(), header, "whsec_any")


@pytest.mark.parametrize(
    ("vat_number", "kind"),
    [
        ("FR40303265045", "eu_vat"),
        ("EL094014201", "eu_vat"),
        ("GB980780684", "gb_vat"),
        ("US12", None),
    ],
)
def test_vat_numbers_become_stripe_tax_ids_by_their_prefix(
    vat_number: str, kind: str | None
) -> None:
    assert tax_id_type(vat_number) == kind


def test_stripe_statuses_map_to_jalons() -> None:
    base = {
        "id": "sub_1",
        "customer": "cus_1",
        "currency": "eur",
        "cancel_at_period_end": False,
        "trial_end": None,
        "items": {
            "data": [
                {
                    "quantity": 3,
                    "current_period_start": 1_800_000_000,
                    "current_period_end": 1_802_592_000,
                    "price": {"metadata": {"jalon_plan_id": "p", "jalon_category": "standard"}},
                }
            ]
        },
    }
    expected = {
        "trialing": "trialing",
        "active": "active",
        "past_due": "past_due",
        "unpaid": "suspended",
        "paused": "suspended",
        "canceled": "canceled",
        "incomplete_expired": "canceled",
        "incomplete": None,
    }
    for stripe_status, jalon in expected.items():
        state = subscription_state({**base, "status": stripe_status})
        assert state.status == jalon
    state = subscription_state({**base, "status": "active"})
    assert (state.quantity, state.currency, state.plan_id) == (3, "EUR", "p")


@pytest.mark.parametrize(
    ("base", "refused"), [("http://127.0.0.1:12111", True), ("https://api.stripe.com", False)]
)
def test_production_talks_to_stripe_over_https_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, base: str, refused: bool
) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JALON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JALON_STRIPE_API_BASE", base)
    if refused:
        with pytest.raises(RuntimeError, match="JALON_STRIPE_API_BASE"):
            load_settings()
    else:
        assert load_settings().stripe_api_base == base
