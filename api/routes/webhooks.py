"""Outgoing webhooks in the tenant console, `/o/{slug}/webhooks…`: the endpoints (add, edit,
enable, disable, delete, reveal or rotate the signing secret, send a test event) and each
endpoint's delivery log, with a redeliver button.

Owners and admins only (`org:webhooks:manage`). Ids go through `tenants.webhooks.endpoints`'
accessors, so another organization's endpoint or delivery is the 404 of an unknown one. The
events offered are those registered (`tenants.webhooks.events`), read at each request.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.errors import UserError
from tenants.context import TenantContext
from tenants.permissions import Permission
from tenants.webhooks import endpoints
from tenants.webhooks.delivery import MAX_ATTEMPTS
from tenants.webhooks.endpoints import EndpointFields
from tenants.webhooks.events import subscribable_events
from web.guards import Ctx
from web.pages import flash, form_error, redirect, render

MANAGE = {"permission": Permission.WEBHOOKS_MANAGE}


async def _fields(request: Request[Any, Any, Any]) -> tuple[EndpointFields, dict[str, Any]]:
    """The endpoint form as fields, and as typed (to show it again with an error)."""
    form = await request.form()
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    events = [v for v in form.getall("events") if isinstance(v, str)] if "events" in form else []
    values["events"] = events
    fields = EndpointFields(
        url=values.get("url", ""),
        description=values.get("description", ""),
        events=tuple(events),
    )
    return fields, values


async def _list_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    context: dict[str, Any] = {
        "endpoints": await endpoints.list_endpoints(ctx),
        "event_types": subscribable_events(),
    }
    if error is None:
        # a new endpoint subscribes to every event unless the admin unticks some
        new: dict[str, Any] = {"events": list(subscribable_events())}
        return render(request, "console/webhooks.html", ctx=ctx, values=new, **context)
    return form_error(request, "console/webhooks.html", error, values or {}, ctx=ctx, **context)


@get("/webhooks", opt=MANAGE)
async def webhooks_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _list_page(request, ctx)


@post("/webhooks", opt=MANAGE)
async def webhook_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    fields, values = await _fields(request)
    try:
        endpoint_id = await endpoints.create_endpoint(ctx, fields)
    except UserError as error:
        return await _list_page(request, ctx, error, values)
    flash(
        request,
        "The endpoint is added. Reveal its signing secret below to set up the receiver.",
    )
    return redirect(f"/o/{ctx.tenant.slug}/webhooks/{endpoint_id}")


async def _endpoint_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    endpoint_id: str,
    *,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
    secret: str | None = None,
) -> Template:
    endpoint = await endpoints.get_endpoint(ctx, endpoint_id)
    cursor = request.query_params.get("cursor") if error is None else None
    page = await endpoints.list_deliveries(ctx, endpoint.id, cursor)
    context: dict[str, Any] = {
        "endpoint": endpoint,
        "deliveries": page.deliveries,
        "next_cursor": page.next_cursor,
        "first_page": not cursor,
        "event_types": subscribable_events(),
        "secret": secret,
        "max_attempts": MAX_ATTEMPTS,
    }
    if error is None:
        form = {
            "url": endpoint.url,
            "description": endpoint.description,
            "events": list(endpoint.events),
        }
        return render(request, "console/webhook.html", ctx=ctx, values=form, **context)
    if values is None:
        error.field = None  # an action's refusal: shown at the top of the page
    return form_error(request, "console/webhook.html", error, values or {}, ctx=ctx, **context)


@get("/webhooks/{endpoint_id:str}", opt=MANAGE)
async def webhook_page(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template:
    try:
        return await _endpoint_page(request, ctx, endpoint_id)
    except UserError as error:
        if error.status_code == 404:
            raise
        # A forged page link: the first page again, with the reason.
        return await _endpoint_page(request, ctx, endpoint_id, error=error)


@post("/webhooks/{endpoint_id:str}", opt=MANAGE)
async def webhook_update(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    fields, values = await _fields(request)
    try:
        await endpoints.update_endpoint(ctx, endpoint_id, fields)
    except UserError as error:
        if error.status_code == 404:
            raise
        return await _endpoint_page(request, ctx, endpoint_id, error=error, values=values)
    flash(request, "The endpoint is saved.")
    return redirect(f"/o/{ctx.tenant.slug}/webhooks/{endpoint_id}")


async def _action(
    request: Request[Any, Any, Any], ctx: TenantContext, endpoint_id: str, action: str
) -> Template | Redirect:
    """One button of the endpoint page; a refusal shows the page again with its reason."""
    page = f"/o/{ctx.tenant.slug}/webhooks/{endpoint_id}"
    try:
        match action:
            case "enable":
                await endpoints.set_enabled(ctx, endpoint_id, True)
                flash(request, "The endpoint is enabled.")
            case "disable":
                await endpoints.set_enabled(ctx, endpoint_id, False)
                flash(request, "The endpoint is disabled: it receives no new event.")
            case "test":
                await endpoints.send_test_event(ctx, endpoint_id)
                flash(request, "A test event is on its way. Reload to see how it went.")
            case "delete":
                await endpoints.delete_endpoint(ctx, endpoint_id)
                flash(request, "The endpoint and its delivery log are deleted.")
                return redirect(f"/o/{ctx.tenant.slug}/webhooks")
            case "reveal":
                secret = await endpoints.reveal_secret(ctx, endpoint_id)
                return await _endpoint_page(request, ctx, endpoint_id, secret=secret)
            case _:
                secret = await endpoints.rotate_secret(ctx, endpoint_id)
                return await _endpoint_page(request, ctx, endpoint_id, secret=secret)
    except UserError as error:
        if error.status_code == 404:
            raise
        return await _endpoint_page(request, ctx, endpoint_id, error=error)
    return redirect(page)


@post("/webhooks/{endpoint_id:str}/enable", opt=MANAGE)
async def webhook_enable(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    return await _action(request, ctx, endpoint_id, "enable")


@post("/webhooks/{endpoint_id:str}/disable", opt=MANAGE)
async def webhook_disable(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    return await _action(request, ctx, endpoint_id, "disable")


@post("/webhooks/{endpoint_id:str}/test", opt=MANAGE)
async def webhook_test(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    return await _action(request, ctx, endpoint_id, "test")


@post("/webhooks/{endpoint_id:str}/delete", opt=MANAGE)
async def webhook_delete(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    return await _action(request, ctx, endpoint_id, "delete")


@post("/webhooks/{endpoint_id:str}/secret", opt=MANAGE)
async def webhook_secret(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    """Show the signing secret (on this response only; the reveal is audited)."""
    return await _action(request, ctx, endpoint_id, "reveal")


@post("/webhooks/{endpoint_id:str}/rotate", opt=MANAGE)
async def webhook_rotate(
    request: Request[Any, Any, Any], ctx: Ctx, endpoint_id: FromPath[str]
) -> Template | Redirect:
    return await _action(request, ctx, endpoint_id, "rotate")


@post("/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/redeliver", opt=MANAGE)
async def webhook_redeliver(
    request: Request[Any, Any, Any],
    ctx: Ctx,
    endpoint_id: FromPath[str],
    delivery_id: FromPath[str],
) -> Template | Redirect:
    try:
        await endpoints.redeliver(ctx, endpoint_id, delivery_id)
    except UserError as error:
        if error.status_code == 404:
            raise
        return await _endpoint_page(request, ctx, endpoint_id, error=error)
    flash(request, "The event is sent again as a new delivery.")
    return redirect(f"/o/{ctx.tenant.slug}/webhooks/{endpoint_id}")


handlers = [
    webhooks_page,
    webhook_create,
    webhook_page,
    webhook_update,
    webhook_enable,
    webhook_disable,
    webhook_test,
    webhook_delete,
    webhook_secret,
    webhook_rotate,
    webhook_redeliver,
]
