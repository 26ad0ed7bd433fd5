"""The local Stripe-compatible server checks what Stripe would: the SDK's typed parameter
classes decide which parameters exist, and objects made are kept for later reads."""

from __future__ import annotations

from dataclasses import replace

import pytest
import stripe

from billing.gateways.stripe import StripeGateway
from core.settings import load_settings
from tests.billing.stripe_server import StripeRequestError, StripeServer, decode_form


def _client(server: StripeServer) -> stripe.StripeClient:
    settings = replace(
        load_settings(), stripe_secret_key="sk_test_server", stripe_api_base=server.url
    )
    return StripeGateway.from_settings(settings).client


def test_forms_decode_into_nested_values_and_lists() -> None:
    form = "items[0][price]=p1&items[0][quantity]=2&items[1][price]=p2&metadata[k]=v&expand[]=x"
    assert decode_form(form) == {
        "items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}],
        "metadata": {"k": "v"},
        "expand": ["x"],
    }


def test_an_unknown_parameter_is_refused_like_stripe_does() -> None:
    server = StripeServer()
    with pytest.raises(StripeRequestError) as refused:
        server.handle("POST", "/v1/customers", "nmae=Atelier")
    assert refused.value.status == 400
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert refused.value.body["error"]["message"] == "Received unknown parameter: nmae"


def test_an_unknown_parameter_deep_inside_is_refused_with_its_path() -> None:
    server = StripeServer()
    customer = server.handle("POST", "/v1/customers", "name=Atelier")
    with pytest.raises(StripeRequestError) as refused:
        server.handle(
            "POST",
            "/v1/subscriptions",
            f"customer={customer['id']}&items[0][price]=p&items[0][seats]=3",
        )
    assert refused.value.body["error"]["message"] == "Received unknown parameter: items[0][seats]"


def test_a_missing_required_parameter_and_a_wrong_type_are_refused() -> None:
    server = StripeServer()
    with pytest.raises(StripeRequestError) as missing:
        server.handle("POST", "/v1/billing_portal/sessions", "return_url=https://x.test/")
    assert missing.value.body["error"]["message"] == "Missing required param: customer"
    customer = server.handle("POST", "/v1/customers", "name=Atelier")
    with pytest.raises(StripeRequestError) as wrong:
        server.handle(
            "POST", "/v1/subscriptions", f"customer={customer['id']}&days_until_due=thirty"
        )
    assert wrong.value.body["error"]["message"] == "Invalid integer: days_until_due"


async def test_the_sdk_gets_fixture_shaped_objects_and_reads_them_back() -> None:
    with StripeServer.running() as server:
        client = _client(server)
        customer = await client.v1.customers.create_async(
            {"name": "Atelier", "tax_id_data": [{"type": "eu_vat", "value": "FR40303265045"}]}
        )
        assert isinstance(customer, stripe.Customer)
        assert customer.name == "Atelier"
        again = await client.v1.customers.retrieve_async(customer.id)
        assert again.id == customer.id
        tax_ids = await client.v1.customers.tax_ids.list_async(customer.id)
        assert [(t.type, t.value) for t in tax_ids.data] == [("eu_vat", "FR40303265045")]
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.customers.create_async({"nmae": "Atelier"})  # type: ignore[arg-type]
        assert refused.value.http_status == 400
        with pytest.raises(stripe.InvalidRequestError) as missing:
            await client.v1.subscriptions.retrieve_async("sub_missing")
        assert missing.value.http_status == 404


async def test_a_declined_card_fails_the_first_invoice() -> None:
    with StripeServer.running() as server:
        client = _client(server)
        customer = await client.v1.customers.create_async({"name": "Atelier"})
        await client.v1.products.create_async({"id": "prod_seat", "name": "Seat"})
        price = await client.v1.prices.create_async(
            {
                "currency": "eur",
                "unit_amount": 500,
                "product": "prod_seat",
                "recurring": {"interval": "month"},
            }
        )
        server.fail_payments(customer.id)
        subscription = await client.v1.subscriptions.create_async(
            {"customer": customer.id, "items": [{"price": price.id, "quantity": 3}]}
        )
        assert subscription.status == "incomplete"
        kinds = [event["type"] for event in server.take_events()]
        assert kinds == [
            "customer.subscription.created",
            "invoice.finalized",
            "invoice.payment_failed",
            "customer.subscription.updated",
        ]
        current = await client.v1.subscriptions.retrieve_async(subscription.id)
        assert current.status == "incomplete"


def test_a_request_without_a_secret_key_is_refused() -> None:
    import httpx

    with StripeServer.running() as server:
        response = httpx.post(f"{server.url}/v1/customers", data={"name": "x"})
    assert response.status_code == 401
