"""Stripe's side of billing over HTTP: `POST /billing/stripe/webhook`, the inbound webhooks.

Public (Stripe is not signed in) and exempt from CSRF (Stripe cannot send a form token):
the `Stripe-Signature` header, checked with the SDK inside its tolerance window against
`JALON_STRIPE_WEBHOOK_SECRET`, is what authenticates a request. The endpoint only stores the
event in the inbox and answers; a job applies it (`billing.inbox`), so Stripe is answered
in milliseconds and never retries because Jalon was slow.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.types import ControllerRouterHandler

from billing.inbox import receive_stripe_webhook
from core.settings import Settings

WEBHOOK_PATH = "/billing/stripe/webhook"


def webhook_handlers(settings: Settings) -> list[ControllerRouterHandler]:
    """The webhook endpoint, checking signatures with `settings`' webhook secret."""
    secret = settings.stripe_webhook_secret

    @post(WEBHOOK_PATH, status_code=200, include_in_schema=False)
    async def stripe_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Store a signed Stripe event and acknowledge it (400 when the signature fails)."""
        received = await receive_stripe_webhook(
            await request.body(), request.headers.get("stripe-signature"), secret
        )
        return Response({"received": True, "duplicate": not received.new}, status_code=200)

    return [stripe_webhook]
