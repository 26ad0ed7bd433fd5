"""`/metrics`: the Prometheus scrape, for the operators' monitoring only.

With `JALON_METRICS_TOKEN` set, a scrape must carry it (`Authorization: Bearer …`, compared in
constant time), from anywhere. Without it, only loopback clients are served: the address the
connection came from (as the ASGI server reports it), never a header a client could write.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from core import metrics
from core.settings import Settings

PATH = "/metrics"


def _loopback(request: Request[Any, Any, Any]) -> bool:
    client = request.scope.get("client")
    if not client:
        return False
    try:
        return ip_address(client[0]).is_loopback
    except ValueError:
        return False


def allowed(request: Request[Any, Any, Any], token: str | None) -> bool:
    """True when this request may read the metrics (see the module's docstring)."""
    if not token:
        return _loopback(request)
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    """The scrape route, guarded by `settings.metrics_token` (or by loopback without one)."""
    token = settings.metrics_token

    @get(PATH, include_in_schema=False)
    async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Every metric in Prometheus's text format, or 401/403 for whoever may not read them."""
        if not allowed(request, token):
            if token:
                return Response(
                    b"a bearer token is required\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={"www-authenticate": 'Bearer realm="metrics"'},
                )
            return Response(
                b"metrics are served to loopback clients only (set JALON_METRICS_TOKEN)\n",
                status_code=403,
                media_type="text/plain",
            )
        return Response(
            await metrics.render(),
            media_type=metrics.CONTENT_TYPE,
            headers={"cache-control": "no-store"},
        )

    return [scrape]
