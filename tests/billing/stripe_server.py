"""A Stripe-compatible HTTP server on 127.0.0.1 for the tests: the real `stripe` SDK talks to it
as it would to api.stripe.com.

- Its answers are copies of Stripe's own example objects (`stripe/fixtures3.json`, from the
  public stripe/openapi repository, MIT: `stripe/LICENSE`) with the fields the request set;
  created objects are kept in memory, so a later GET returns them.
- It checks every request's parameters against the installed SDK's typed parameter classes
  (`stripe.params.*Params`, TypedDicts): an unknown parameter, a missing required one or a
  value of the wrong type is a Stripe-shaped 400, so a call Stripe would refuse fails the test.
- It plays Stripe's part in a subscription's life: an invoice per period, paid or failed
  (`fail_payments`), Checkout completed (`complete_checkout`), a renewal (`renew`), a retried
  payment (`pay_invoice`); each change records the event Stripe would send (`events`), which
  the tests sign with the SDK and post to Jalon's webhook endpoint.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe.params
import stripe.params.billing_portal
import stripe.params.checkout
import typing_extensions

FIXTURES = Path(__file__).parent / "stripe" / "fixtures3.json"

Json = dict[str, Any]


class StripeRequestError(Exception):
    """What Stripe answers with a 4xx: `{"error": {...}}`."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.body: Json = {
            "error": {
                "type": "invalid_request_error",
                "message": message,
                **({"param": param} if param else {}),
                **({"code": code} if code else {}),
            }
        }


# -- form decoding and parameter checking ---------------------------------------------------


def decode_form(text: str) -> Json:
    """Stripe's form encoding (`items[0][price]=…`, `metadata[k]=…`) as nested values; lists
    come as dicts of indices and are turned into lists."""
    root: Json = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "[]":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    decoded: Json = _lists(root)
    return decoded


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _lists(inner) for key, inner in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return value


def _resolve(annotation: Any, module: str) -> Any:
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        namespace = dict(vars(sys.modules[module]))
        namespace.setdefault("UntypedStripeObject", dict)
        try:
            return eval(annotation, namespace)  # noqa: S307  # the SDK's own annotations
        except NameError:
            return Any
    return annotation


def check_params(value: Any, annotation: Any, module: str, path: str = "") -> list[str]:
    """Why `value` (decoded from a form) does not fit `annotation`; [] when it does."""
    annotation = _resolve(annotation, module)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return []
    if origin in (typing.NotRequired, typing.Required, typing_extensions.NotRequired):
        return check_params(value, args[0], module, path)
    if typing_extensions.is_typeddict(annotation):
        if not isinstance(value, dict):
            return [f"Invalid object: {path or 'parameters'}"]
        hints = annotation.__annotations__
        errors = [
            f"Received unknown parameter: {_join(path, key)}" for key in value if key not in hints
        ]
        errors += [
            f"Missing required param: {_join(path, key)}"
            for key in getattr(annotation, "__required_keys__", ())
            if key not in value
        ]
        for key, inner in value.items():
            if key in hints:
                errors += check_params(inner, hints[key], annotation.__module__, _join(path, key))
        return errors
    if origin is typing.Union or (
        origin is not None and str(origin) == "<class 'types.UnionType'>"
    ):
        alternatives = [check_params(value, arg, module, path) for arg in args]
        if any(not errors for errors in alternatives):
            return []
        return min(alternatives, key=len)
    if origin is typing.Literal:
        return [] if value in [str(arg) for arg in args] else [f"Invalid value for {path}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"Invalid array: {path}"]
        errors = []
        for i, item in enumerate(value):
            errors += check_params(item, args[0] if args else Any, module, f"{path}[{i}]")
        return errors
    if origin in (dict, typing.Dict) or annotation is dict:  # noqa: UP006
        return [] if isinstance(value, dict) else [f"Invalid object: {path}"]
    if annotation is str:
        return [] if isinstance(value, str) else [f"Invalid string: {path}"]
    if annotation is bool:
        return [] if value in ("true", "false") else [f"Invalid boolean: {path}"]
    if annotation is int:
        return (
            []
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value)
            else [f"Invalid integer: {path}"]
        )
    if annotation in (float, Decimal):
        try:
            float(value)
        except (TypeError, ValueError):
            return [f"Invalid decimal: {path}"]
        return []
    if annotation is type(None):
        return [f"Invalid value for {path}"]
    return []


def _join(path: str, key: str) -> str:
    return f"{path}[{key}]" if path else key


# -- the server -----------------------------------------------------------------------------


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    params: Any
    handler: Callable[..., Json]


@dataclass
class StripeState:
    """Every object the server made, by id, and what the tests told it."""

    objects: dict[str, Json] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)
    requests: list[tuple[str, str, Json]] = field(default_factory=list)
    failing_customers: set[str] = field(default_factory=set)
    idempotent: dict[tuple[str, str], Json] = field(default_factory=dict)


class StripeServer:
    """The server; `url` is its API base. Use `with StripeServer.running() as server:`."""

    def __init__(self) -> None:
        self.fixtures: dict[str, Json] = json.loads(FIXTURES.read_text())["resources"]
        self.state = StripeState()
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self._clock = itertools.count(int(time.time()))
        self.routes = self._routes()
        self.httpd: ThreadingHTTPServer | None = None

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[StripeServer]:
        server = cls()
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_POST(self) -> None:
                server._serve(self, "POST")

            def do_DELETE(self) -> None:
                server._serve(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- HTTP ---------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length).decode() if length else ""
        try:
            if not (request.headers.get("authorization") or "").startswith("Bearer sk_"):
                raise StripeRequestError(401, "Invalid API Key provided")
            status, answer = (
                200,
                self.handle(
                    method,
                    parts.path,
                    body if method == "POST" else parts.query,
                    request.headers.get("idempotency-key"),
                ),
            )
        except StripeRequestError as error:
            status, answer = error.status, error.body
        payload = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(payload)))
        request.send_header("request-id", f"req_{secrets.token_hex(8)}")
        request.end_headers()
        request.wfile.write(payload)

    def handle(self, method: str, path: str, form: str, idempotency_key: str | None = None) -> Json:
        """Answer one API call (also callable without HTTP, for the server's own tests)."""
        params = decode_form(form)
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if route.method != method or match is None:
                continue
            errors = check_params(params, route.params, route.params.__module__)
            if errors:
                raise StripeRequestError(400, errors[0], param=errors[0].split(": ")[-1])
            with self.lock:
                self.state.requests.append((method, path, params))
                if idempotency_key and method == "POST":
                    cached = self.state.idempotent.get((path, idempotency_key))
                    if cached is not None:
                        return copy.deepcopy(cached)
                try:
                    made = route.handler(params, *match.groups())
                except KeyError as missing:
                    # what the SDK's types leave optional but Stripe needs all the same
                    raise StripeRequestError(
                        400, f"Missing required param: {missing.args[0]}", param=missing.args[0]
                    ) from missing
                answer = copy.deepcopy(_public(made))
                if idempotency_key and method == "POST":
                    self.state.idempotent[(path, idempotency_key)] = copy.deepcopy(answer)
                return answer
        raise StripeRequestError(404, f"Unrecognized request URL ({method}: {path}).")

    def _routes(self) -> list[Route]:
        p, checkout, portal = stripe.params, stripe.params.checkout, stripe.params.billing_portal
        table: list[tuple[str, str, Any, Callable[..., Json]]] = [
            ("POST", "/v1/customers", p.CustomerCreateParams, self._create_customer),
            ("GET", "/v1/customers/([^/]+)", p.CustomerRetrieveParams, self._get("customer")),
            ("POST", "/v1/customers/([^/]+)", p.CustomerUpdateParams, self._update_customer),
            ("GET", "/v1/customers/([^/]+)/tax_ids", p.CustomerTaxIdListParams, self._tax_ids),
            (
                "POST",
                "/v1/customers/([^/]+)/tax_ids",
                p.CustomerTaxIdCreateParams,
                self._create_tax_id,
            ),
            ("GET", "/v1/tax_rates", p.TaxRateListParams, self._list_tax_rates),
            ("POST", "/v1/tax_rates", p.TaxRateCreateParams, self._create_tax_rate),
            ("POST", "/v1/products", p.ProductCreateParams, self._create_product),
            ("GET", "/v1/products/([^/]+)", p.ProductRetrieveParams, self._get("product")),
            ("GET", "/v1/prices", p.PriceListParams, self._list_prices),
            ("POST", "/v1/prices", p.PriceCreateParams, self._create_price),
            ("POST", "/v1/subscriptions", p.SubscriptionCreateParams, self._create_subscription),
            (
                "GET",
                "/v1/subscriptions/([^/]+)",
                p.SubscriptionRetrieveParams,
                self._get("subscription"),
            ),
            (
                "POST",
                "/v1/subscriptions/([^/]+)",
                p.SubscriptionUpdateParams,
                self._update_subscription,
            ),
            (
                "DELETE",
                "/v1/subscriptions/([^/]+)",
                p.SubscriptionCancelParams,
                self._cancel_subscription,
            ),
            ("GET", "/v1/invoices/([^/]+)", p.InvoiceRetrieveParams, self._get("invoice")),
            ("POST", "/v1/invoiceitems", p.InvoiceItemCreateParams, self._create_invoice_item),
            (
                "POST",
                "/v1/invoices/([^/]+)/finalize",
                p.InvoiceFinalizeInvoiceParams,
                self._finalize_invoice,
            ),
            ("POST", "/v1/checkout/sessions", checkout.SessionCreateParams, self._create_checkout),
            (
                "GET",
                "/v1/checkout/sessions/([^/]+)",
                checkout.SessionRetrieveParams,
                self._get("checkout.session"),
            ),
            (
                "POST",
                "/v1/billing_portal/sessions",
                portal.SessionCreateParams,
                self._create_portal_session,
            ),
        ]
        return [Route(m, re.compile(path), params, h) for m, path, params, h in table]

    # -- objects ------------------------------------------------------------------------

    def now(self) -> int:
        """Stripe's clock: whole seconds, strictly increasing from one change to the next."""
        return next(self._clock)

    def _new(self, kind: str, prefix: str, **fields: Any) -> Json:
        obj = copy.deepcopy(self.fixtures[kind])
        obj.update(
            id=fields.pop("id", None) or f"{prefix}_test{next(self._ids):06d}",
            created=self.now(),
            livemode=False,
        )
        if "metadata" in obj:
            obj["metadata"] = {}
        obj.update(fields)
        self.state.objects[obj["id"]] = obj
        return obj

    def _object(self, kind: str, object_id: str) -> Json:
        obj = self.state.objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            noun = kind.split(".")[-1].replace("_", " ")
            raise StripeRequestError(
                404, f"No such {noun}: '{object_id}'", param="id", code="resource_missing"
            )
        return obj

    def _get(self, kind: str) -> Callable[..., Json]:
        def get(params: Json, object_id: str) -> Json:
            return self._object(kind, object_id)

        return get

    def event(self, kind: str, obj: Json) -> Json:
        """Record the event Stripe would send about `obj` (a copy of it, as it is now)."""
        event = copy.deepcopy(self.fixtures["event"])
        event.update(
            id=f"evt_test{next(self._ids):06d}",
            created=self.now(),
            type=kind,
            data={"object": copy.deepcopy(obj)},
            livemode=False,
            api_version=stripe.api_version,
        )
        self.state.events.append(event)
        return event

    # customers

    def _create_customer(self, params: Json) -> Json:
        tax_ids = params.pop("tax_id_data", [])
        customer = self._new("customer", "cus", **self._customer_fields(params))
        for tax_id in tax_ids:
            self._create_tax_id(tax_id, customer["id"])
        return customer

    @staticmethod
    def _customer_fields(params: Json) -> Json:
        fields = dict(params)
        if "address" in fields and isinstance(fields["address"], dict):
            fields["address"] = {
                key: fields["address"].get(key)
                for key in ("line1", "line2", "postal_code", "city", "state", "country")
            }
        return fields

    def _update_customer(self, params: Json, customer_id: str) -> Json:
        customer = self._object("customer", customer_id)
        metadata = params.pop("metadata", None)
        customer.update(self._customer_fields(params))
        if isinstance(metadata, dict):
            customer["metadata"] = {**customer.get("metadata", {}), **metadata}
        return customer

    def _tax_ids(self, params: Json, customer_id: str) -> Json:
        self._object("customer", customer_id)
        found = [
            obj
            for obj in self.state.objects.values()
            if obj.get("object") == "tax_id" and obj.get("customer") == customer_id
        ]
        return _listing(found, f"/v1/customers/{customer_id}/tax_ids")

    def _create_tax_id(self, params: Json, customer_id: str) -> Json:
        self._object("customer", customer_id)
        return self._new(
            "tax_id", "txi", type=params["type"], value=params["value"], customer=customer_id
        )

    # taxes

    def _create_tax_rate(self, params: Json) -> Json:
        return self._new(
            "tax_rate",
            "txr",
            display_name=params["display_name"],
            percentage=float(params["percentage"]),
            inclusive=params["inclusive"] == "true",
            country=params.get("country"),
            jurisdiction=params.get("jurisdiction"),
            tax_type=params.get("tax_type"),
            description=params.get("description"),
            metadata=params.get("metadata", {}),
            active=True,
            flat_amount=None,
            effective_percentage=None,
        )

    def _list_tax_rates(self, params: Json) -> Json:
        found = [
            obj
            for obj in self.state.objects.values()
            if obj.get("object") == "tax_rate" and obj.get("active")
        ]
        return _listing(found[: int(params.get("limit", 10))], "/v1/tax_rates")

    # catalogue

    def _create_product(self, params: Json) -> Json:
        if params.get("id") in self.state.objects:
            raise StripeRequestError(400, "Product already exists.", param="id")
        return self._new("product", "prod", **params, active=True)

    def _create_price(self, params: Json) -> Json:
        self._object("product", params["product"])
        lookup_key = params.get("lookup_key")
        if lookup_key and any(
            obj.get("object") == "price" and obj.get("lookup_key") == lookup_key
            for obj in self.state.objects.values()
        ):
            raise StripeRequestError(
                400, "A price with this lookup_key exists.", param="lookup_key"
            )
        recurring = params.get("recurring")
        fields = {
            "currency": params["currency"],
            "product": params["product"],
            "unit_amount": int(params["unit_amount"]),
            "unit_amount_decimal": params["unit_amount"],
            "lookup_key": lookup_key,
            "metadata": params.get("metadata", {}),
            "type": "recurring" if recurring else "one_time",
            "active": True,
            "billing_scheme": "per_unit",
            "transform_quantity": None,
        }
        price = self._new("price", "price", **fields)
        if recurring:
            price["recurring"] = {
                "interval": recurring["interval"],
                "interval_count": int(recurring.get("interval_count", 1)),
                "meter": None,
                "usage_type": "licensed",
                "trial_period_days": None,
            }
        else:
            price["recurring"] = None
        return price

    def _list_prices(self, params: Json) -> Json:
        keys = params.get("lookup_keys")
        found = [
            obj
            for obj in self.state.objects.values()
            if obj.get("object") == "price" and (keys is None or obj.get("lookup_key") in keys)
        ]
        return _listing(found[: int(params.get("limit", 10))], "/v1/prices")

    # subscriptions

    def _period_end(self, start: int, price: Json) -> int:
        moment = datetime.fromtimestamp(start, UTC)
        interval = (price.get("recurring") or {}).get("interval", "month")
        months = 12 if interval == "year" else 1
        index = moment.month - 1 + months
        year, month = moment.year + index // 12, index % 12 + 1
        return int(moment.replace(year=year, month=month, day=min(moment.day, 28)).timestamp())

    def _item(self, subscription_id: str, price_id: str, quantity: int, start: int) -> Json:
        price = self._object("price", price_id)
        item: Json = copy.deepcopy(self.fixtures["subscription"]["items"]["data"][0])
        item.update(
            id=f"si_test{next(self._ids):06d}",
            created=start,
            price=copy.deepcopy(price),
            quantity=quantity,
            subscription=subscription_id,
            current_period_start=start,
            current_period_end=self._period_end(start, price),
            metadata={},
        )
        item.pop("plan", None)
        return item

    def _create_subscription(self, params: Json) -> Json:
        customer = self._object("customer", params["customer"])
        return self.subscribe(
            customer["id"],
            [(item["price"], int(item.get("quantity", 1))) for item in params.get("items", [])],
            metadata=params.get("metadata", {}),
            collection_method=params.get("collection_method", "charge_automatically"),
            days_until_due=int(params["days_until_due"]) if "days_until_due" in params else None,
            trial_end=int(params["trial_end"]) if params.get("trial_end", "now") != "now" else None,
            default_tax_rates=params.get("default_tax_rates", []),
        )

    def subscribe(
        self,
        customer_id: str,
        items: list[tuple[str, int]],
        *,
        metadata: Json,
        collection_method: str = "charge_automatically",
        days_until_due: int | None = None,
        trial_end: int | None = None,
        default_tax_rates: list[str] | None = None,
    ) -> Json:
        """A new subscription, as Stripe makes it: trialing, or its first invoice issued
        (paid, or failed when the customer's payments fail: then `incomplete`)."""
        start = self.now()
        subscription = self._new(
            "subscription",
            "sub",
            customer=customer_id,
            metadata=dict(metadata),
            collection_method=collection_method,
            days_until_due=days_until_due,
            trial_end=trial_end,
            trial_start=start if trial_end else None,
            status="trialing" if trial_end else "active",
            cancel_at_period_end=False,
            cancel_at=None,
            canceled_at=None,
            ended_at=None,
            start_date=start,
            latest_invoice=None,
            discounts=[],
            pending_update=None,
            schedule=None,
            test_clock=None,
            default_tax_rates=[
                copy.deepcopy(self._object("tax_rate", rate)) for rate in default_tax_rates or []
            ],
        )
        subscription["items"] = _listing(
            [self._item(subscription["id"], price, qty, start) for price, qty in items],
            f"/v1/subscription_items?subscription={subscription['id']}",
        )
        subscription["currency"] = subscription["items"]["data"][0]["price"]["currency"]
        self.event("customer.subscription.created", subscription)
        if not trial_end:
            invoice = self._invoice(subscription, "subscription_create")
            if invoice["status"] != "paid" and collection_method == "charge_automatically":
                subscription["status"] = "incomplete"
                self.event("customer.subscription.updated", subscription)
        return subscription

    def _invoice(self, subscription: Json, reason: str) -> Json:
        """The period's invoice, finalized, then paid or failed (`charge_automatically`) or
        left open (`send_invoice`); its events recorded."""
        items = subscription["items"]["data"]
        pending = self._pending_items(subscription)
        subtotal = sum(item["price"]["unit_amount"] * item["quantity"] for item in items)
        subtotal += sum(item["amount"] for item in pending)
        taxes = [
            {
                "amount": int(
                    (Decimal(subtotal) * Decimal(str(rate["percentage"])) / 100).quantize(
                        Decimal(1), rounding=ROUND_HALF_UP
                    )
                ),
                "tax_behavior": "exclusive",
                "tax_rate_details": {"tax_rate": rate["id"]},
                "taxability_reason": "standard_rated",
                "taxable_amount": subtotal,
                "type": "tax_rate_details",
            }
            for rate in subscription.get("default_tax_rates") or []
        ]
        total = subtotal + sum(tax["amount"] for tax in taxes)
        start = items[0]["current_period_start"]
        invoice = self._new(
            "invoice",
            "in",
            customer=subscription["customer"],
            status="open",
            billing_reason=reason,
            collection_method=subscription["collection_method"],
            currency=subscription["currency"],
            subtotal=subtotal,
            subtotal_excluding_tax=subtotal,
            total_excluding_tax=subtotal,
            total_taxes=taxes,
            total=total,
            amount_due=total,
            amount_paid=0,
            amount_remaining=total,
            period_start=start,
            period_end=items[0]["current_period_end"],
            number=f"TEST-{next(self._ids):04d}",
            attempt_count=0,
            attempted=False,
            subscription=None,
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "subscription": subscription["id"],
                    "metadata": dict(subscription["metadata"]),
                },
            },
            due_date=(
                start + 86400 * (subscription["days_until_due"] or 0)
                if subscription["collection_method"] == "send_invoice"
                else None
            ),
            lines=_listing([], "/v1/invoices/lines"),
        )
        invoice["status_transitions"] = {
            "finalized_at": invoice["created"],
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        }
        invoice["lines"] = _listing(
            [self._line(invoice, subscription, item) for item in items]
            + [self._item_line(invoice, item) for item in pending],
            f"/v1/invoices/{invoice['id']}/lines",
        )
        for item in pending:
            item["invoice"] = invoice["id"]
        subscription["latest_invoice"] = invoice["id"]
        self.event("invoice.finalized", invoice)
        if subscription["collection_method"] == "charge_automatically":
            self._attempt(invoice)
        return invoice

    def _line(self, invoice: Json, subscription: Json, item: Json) -> Json:
        line: Json = copy.deepcopy(self.fixtures["line_item"])
        price = item["price"]
        product = self.state.objects.get(price["product"], {})
        amount = price["unit_amount"] * item["quantity"]
        line.update(
            id=f"il_test{next(self._ids):06d}",
            invoice=invoice["id"],
            amount=amount,
            subtotal=amount,
            currency=price["currency"],
            description=f"{item['quantity']} × {product.get('name', 'Subscription')}",
            quantity=item["quantity"],
            period={"start": item["current_period_start"], "end": item["current_period_end"]},
            subscription=subscription["id"],
            parent={
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription["id"],
                    "subscription_item": item["id"],
                },
            },
            pricing={
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": str(price["unit_amount"]),
            },
            taxes=[],
            metadata={},
        )
        return line

    def _item_line(self, invoice: Json, item: Json) -> Json:
        line: Json = copy.deepcopy(self.fixtures["line_item"])
        line.update(
            id=f"il_test{next(self._ids):06d}",
            invoice=invoice["id"],
            amount=item["amount"],
            subtotal=item["amount"],
            currency=item["currency"],
            description=item["description"],
            quantity=item["quantity"],
            period=copy.deepcopy(item["period"]),
            subscription=None,
            parent={
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": item["id"],
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": (
                        (item.get("parent") or {}).get("subscription_details") or {}
                    ).get("subscription"),
                },
                "subscription_item_details": None,
            },
            pricing={
                "type": "price_details",
                "price_details": None,
                "unit_amount_decimal": item["pricing"]["unit_amount_decimal"],
            },
            taxes=[],
            metadata={},
        )
        return line

    def _attempt(self, invoice: Json) -> bool:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if invoice["customer"] in self.state.failing_customers:
            self.event("invoice.payment_failed", invoice)
            return False
        invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = self.now()
        self.event("invoice.paid", invoice)
        return True

    def _update_subscription(self, params: Json, subscription_id: str) -> Json:
        subscription = self._object("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeRequestError(
                400, "A canceled subscription can only update its cancellation_details."
            )
        items = {item["id"]: item for item in subscription["items"]["data"]}
        for change in params.get("items", []):
            item = items.get(change.get("id", ""))
            if item is None:
                raise StripeRequestError(400, "No such subscription item", param="items")
            if "price" in change:
                item["price"] = copy.deepcopy(self._object("price", change["price"]))
            if "quantity" in change:
                item["quantity"] = int(change["quantity"])
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        if "metadata" in params and isinstance(params["metadata"], dict):
            subscription["metadata"].update(params["metadata"])
        subscription["pending_proration_behavior"] = params.get(
            "proration_behavior", "create_prorations"
        )
        self.event("customer.subscription.updated", subscription)
        return subscription

    def _cancel_subscription(self, params: Json, subscription_id: str) -> Json:
        subscription = self._object("subscription", subscription_id)
        moment = self.now()
        subscription.update(status="canceled", canceled_at=moment, ended_at=moment)
        self.event("customer.subscription.deleted", subscription)
        return subscription

    def _create_invoice_item(self, params: Json) -> Json:
        """A pending invoice item: the subscription's (or else the customer's) next invoice
        takes it (`_invoice`)."""
        customer = self._object("customer", params["customer"])
        subscription_id = params.get("subscription")
        if subscription_id is not None:
            self._object("subscription", subscription_id)
        quantity = int(params.get("quantity", 1))
        unit = params.get("unit_amount_decimal")
        if "amount" in params:
            amount = int(params["amount"])
        elif unit is not None:
            amount = int((Decimal(unit) * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        else:
            raise StripeRequestError(400, "Missing required param: amount.", param="amount")
        moment = self.now()
        period = params.get("period") or {}
        return self._new(
            "invoiceitem",
            "ii",
            customer=customer["id"],
            currency=params["currency"],
            amount=amount,
            net_amount=amount,
            quantity=quantity,
            quantity_decimal=str(quantity),
            description=params.get("description"),
            date=moment,
            invoice=None,
            proration=False,
            discountable=params.get("discountable", "true") == "true",
            metadata=dict(params.get("metadata") or {}),
            period={
                "start": int(period.get("start", moment)),
                "end": int(period.get("end", moment)),
            },
            parent=(
                {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": subscription_id},
                }
                if subscription_id
                else None
            ),
            pricing={"type": "price_details", "unit_amount_decimal": unit},
            tax_rates=[
                copy.deepcopy(self._object("tax_rate", rate))
                for rate in params.get("tax_rates", [])
            ],
        )

    def _pending_items(self, subscription: Json) -> list[Json]:
        return [
            obj
            for obj in self.state.objects.values()
            if obj.get("object") == "invoiceitem"
            and obj.get("invoice") is None
            and obj["customer"] == subscription["customer"]
            and ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            in (None, subscription["id"])
        ]

    def _finalize_invoice(self, params: Json, invoice_id: str) -> Json:
        invoice = self._object("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise StripeRequestError(400, "This invoice is already finalized.")
        invoice["status"] = "open"
        self.event("invoice.finalized", invoice)
        return invoice

    # hosted pages

    def _create_checkout(self, params: Json) -> Json:
        if params.get("customer"):
            self._object("customer", params["customer"])
        for item in params.get("line_items", []):
            self._object("price", item["price"])
        session = self._new(
            "checkout.session",
            "cs",
            mode=params["mode"],
            customer=params.get("customer"),
            client_reference_id=params.get("client_reference_id"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            status="open",
            payment_status="unpaid",
            subscription=None,
            metadata=params.get("metadata", {}),
        )
        session["url"] = f"https://checkout.stripe.test/c/pay/{session['id']}"
        session["_line_items"] = params.get("line_items", [])
        session["_subscription_data"] = params.get("subscription_data", {})
        return session

    def _create_portal_session(self, params: Json) -> Json:
        self._object("customer", params["customer"])
        session = self._new(
            "billing_portal.session",
            "bps",
            customer=params["customer"],
            return_url=params.get("return_url"),
        )
        session["url"] = f"https://billing.stripe.test/p/session/{session['id']}"
        return session

    # -- what tests make happen ---------------------------------------------------------

    def fail_payments(self, customer_id: str, failing: bool = True) -> None:
        """The customer's card is declined from now on (or accepted again)."""
        with self.lock:
            if failing:
                self.state.failing_customers.add(customer_id)
            else:
                self.state.failing_customers.discard(customer_id)

    def complete_checkout(self, session_id: str) -> Json:
        """The customer paid on the Checkout page: the subscription is made, the session
        completes (`checkout.session.completed`)."""
        with self.lock:
            session = self._object("checkout.session", session_id)
            data = session.get("_subscription_data", {})
            subscription = self.subscribe(
                session["customer"],
                [(item["price"], int(item.get("quantity", 1))) for item in session["_line_items"]],
                metadata=data.get("metadata", {}),
                default_tax_rates=data.get("default_tax_rates", []),
            )
            session.update(
                status="complete", payment_status="paid", subscription=subscription["id"]
            )
            self.event("checkout.session.completed", _public(session))
            return copy.deepcopy(subscription)

    def renew(self, subscription_id: str) -> Json:
        """The period ends: the next one starts and is invoiced; a failed payment makes the
        subscription `past_due`."""
        with self.lock:
            subscription = self._object("subscription", subscription_id)
            for item in subscription["items"]["data"]:
                start = item["current_period_end"]
                item.update(
                    current_period_start=start,
                    current_period_end=self._period_end(start, item["price"]),
                )
            if subscription["status"] == "trialing":
                subscription["status"] = "active"
                subscription["trial_end"] = subscription["trial_end"]
            invoice = self._invoice(subscription, "subscription_cycle")
            if invoice["status"] != "paid" and subscription["collection_method"] == (
                "charge_automatically"
            ):
                subscription["status"] = "past_due"
            self.event("customer.subscription.updated", subscription)
            return copy.deepcopy(subscription)

    def give_up(self, subscription_id: str) -> Json:
        """Stripe's retries are exhausted: the subscription becomes `unpaid`."""
        with self.lock:
            subscription = self._object("subscription", subscription_id)
            subscription["status"] = "unpaid"
            self.event("customer.subscription.updated", subscription)
            return copy.deepcopy(subscription)

    def pay_invoice(self, invoice_id: str) -> Json:
        """The invoice is paid at last (a new card): its subscription is `active` again."""
        with self.lock:
            invoice = self._object("invoice", invoice_id)
            self.fail_payments(invoice["customer"], False)
            self._attempt(invoice)
            subscription_id = invoice["parent"]["subscription_details"]["subscription"]
            subscription = self._object("subscription", subscription_id)
            subscription["status"] = "active"
            self.event("customer.subscription.updated", subscription)
            return copy.deepcopy(invoice)

    def take_events(self) -> list[Json]:
        """The events recorded since the last call, oldest first."""
        with self.lock:
            events, self.state.events = self.state.events, []
            return events

    def requests_to(self, method: str, path: str) -> list[Json]:
        """The parameters of every call made to `method path`, in order."""
        with self.lock:
            return [params for m, p, params in self.state.requests if (m, p) == (method, path)]


def _listing(data: list[Json], url: str) -> Json:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def _public(obj: Json) -> Json:
    """An object without the server's own bookkeeping (keys starting with `_`)."""
    return {key: value for key, value in obj.items() if not key.startswith("_")}
