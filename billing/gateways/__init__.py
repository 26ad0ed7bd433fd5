"""Payment gateways behind one interface (`base.PaymentGateway`): Stripe through its SDK
(`stripe`), bank transfers with invoices Jalon issues itself (`manual`)."""

from __future__ import annotations

import importlib
from typing import cast

from billing.gateways.base import PaymentGateway
from core.settings import Settings

#: The values of `subscription.gateway`.
GATEWAYS = ("manual", "stripe")


def gateway_for(name: str, settings: Settings) -> PaymentGateway:
    """The gateway named `name` (a subscription's `gateway`), configured from `settings`.

    Stripe needs `JALON_STRIPE_SECRET_KEY`; without it a Stripe subscription is a
    configuration error (RuntimeError), never a silent fall-back to another gateway.
    """
    if name == "stripe":
        from billing.gateways.stripe import StripeGateway

        return StripeGateway.from_settings(settings)
    if name == "manual":
        # The manual gateway's module is the invoices' owner's; it takes the settings.
        module = importlib.import_module("billing.gateways.manual")
        return cast("PaymentGateway", module.ManualGateway(settings))
    raise ValueError(f"unknown payment gateway {name!r}")
