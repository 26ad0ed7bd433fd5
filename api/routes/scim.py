"""SCIM 2.0, `/scim/v2/…`: a directory provisions the organization its token belongs to
(RFC 7644). Users and Groups (create, read, list with filters and paging, replace, patch,
delete) and the discovery documents (ServiceProviderConfig, ResourceTypes, Schemas).

Authenticated by a SCIM token (`Authorization: Bearer jalon_scim_…`), made on the console's
SCIM page; excluded from CSRF like the JSON API. Everything answers `application/scim+json`,
errors as SCIM error documents; ids of another organization are the 404 of unknown ones.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath
from litestar.types import ExceptionHandlersMap

from core.errors import NotFound, Unauthenticated, UserError
from core.i18n import translate
from core.settings import get_settings
from sso import scim
from sso.scim_errors import ScimInvalid
from sso.scim_schemas import (
    error_document,
    list_response,
    resource_types,
    schemas,
    service_provider_config,
)
from sso.scim_tokens import scim_context
from tenants.context import TenantContext
from web.guards import Ctx
from web.pages import client_ip
from web.requests import MAX_JSON_DEPTH, TOO_DEEP_MESSAGE, json_depth_exceeds

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/scim+json"
PATH = "/scim/v2"
#: Directories read these messages in logs: English, whatever the request says.
LOCALE = "en"


def base_url() -> str:
    """Where resources live, as their `meta.location` says (`JALON_BASE_URL` + /scim/v2)."""
    return get_settings().base_url + PATH


def scim_response(body: dict[str, Any], status: int = 200) -> Response[bytes]:
    return Response(json.dumps(body).encode(), status_code=status, media_type=MEDIA_TYPE)


def _error(status: int, detail: str, scim_type: str | None = None) -> Response[bytes]:
    response = scim_response(error_document(status, detail, scim_type), status)
    if status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="scim"'
    return response


def user_error(_: Request[Any, Any, Any], error: UserError) -> Response[bytes]:
    """A refused request as a SCIM error: validation is a 400 (SCIM has no 422)."""
    detail = translate(LOCALE, error.message, **error.params)
    scim_type = getattr(error, "scim_type", None)
    status = error.status_code
    if status == 422:
        status, scim_type = 400, scim_type or "invalidValue"
    return _error(status, detail, scim_type)


def http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    response = _error(
        error.status_code, str(error.detail or "The request could not be understood.")
    )
    # A 405 names the methods the path takes (`Allow`, RFC 9110).
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


def server_error(_: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("unhandled error in SCIM", exc_info=error)
    return _error(500, "Something went wrong on our side.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    UserError: user_error,
    HTTPException: http_error,
    Exception: server_error,
}


async def scim_bearer(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The SCIM token names the organization and stands for its directory."""
    scheme, _, raw = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthenticated("Send a SCIM token as 'Authorization: Bearer <token>'.")
    ctx = await scim_context(
        raw.strip(), client_ip(connection), connection.headers.get("user-agent", "")
    )
    connection.scope["state"]["ctx"] = ctx


def _ctx(request: Request[Any, Any, Any]) -> TenantContext:
    ctx: TenantContext = request.scope["state"]["ctx"]
    return ctx


async def _body(request: Request[Any, Any, Any]) -> Any:
    body = await request.body()
    # Refused before `json.loads` recurses into it (a RecursionError past ~1,000 levels).
    if json_depth_exceeds(body):
        raise ScimInvalid("invalidSyntax", TOO_DEEP_MESSAGE, max=MAX_JSON_DEPTH)
    try:
        return json.loads(body)
    except ValueError:
        raise ScimInvalid("invalidSyntax", "The body is not valid JSON.") from None


def _names(text: str | None) -> list[str]:
    return [name.strip().lower() for name in (text or "").split(",") if name.strip()]


def project(document: dict[str, Any], attributes: list[str], excluded: list[str]) -> dict[str, Any]:
    """`document` narrowed to `attributes` (or without `excluded`), RFC 7644 §3.9; `id` and
    `schemas` always stay. Names may be `attr` or `attr.sub`, in any letter case."""
    always = {"id", "schemas"}
    if attributes:
        kept: dict[str, Any] = {}
        for key, value in document.items():
            lowered = key.lower()
            if lowered in always or lowered in attributes:
                kept[key] = value
                continue
            subs = [name.split(".", 1)[1] for name in attributes if name.startswith(lowered + ".")]
            if subs and isinstance(value, dict):
                kept[key] = {k: v for k, v in value.items() if k.lower() in subs}
            elif subs and isinstance(value, list):
                kept[key] = [
                    {k: v for k, v in item.items() if k.lower() in subs}
                    for item in value
                    if isinstance(item, dict)
                ]
        return kept
    if excluded:
        return {
            k: v for k, v in document.items() if k.lower() in always or k.lower() not in excluded
        }
    return document


def _int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ScimInvalid("invalidValue", "{name} must be a number.", name=name) from None


def _shown(request: Request[Any, Any, Any], document: dict[str, Any]) -> dict[str, Any]:
    query = request.query_params
    return project(
        document, _names(query.get("attributes")), _names(query.get("excludedAttributes"))
    )


# --- discovery -----------------------------------------------------------------------------


@get("/ServiceProviderConfig")
async def provider_config() -> Response[bytes]:
    return scim_response(service_provider_config(base_url()))


@get("/ResourceTypes")
async def list_resource_types() -> Response[bytes]:
    types = resource_types(base_url())
    return scim_response(list_response(types, len(types)))


@get("/ResourceTypes/{name:str}")
async def get_resource_type(name: FromPath[str]) -> Response[bytes]:
    found = [item for item in resource_types(base_url()) if item["id"] == name]
    if not found:
        raise NotFound()
    return scim_response(found[0])


@get("/Schemas")
async def list_schemas() -> Response[bytes]:
    documents = schemas(base_url())
    return scim_response(list_response(documents, len(documents)))


@get("/Schemas/{schema_id:str}")
async def get_schema(schema_id: FromPath[str]) -> Response[bytes]:
    found = [item for item in schemas(base_url()) if item["id"] == schema_id]
    if not found:
        raise NotFound()
    return scim_response(found[0])


@post("/.search")
async def search_everything() -> Response[bytes]:
    """Searching every resource type at once is not offered (RFC 7644 §3.4.3 allows it)."""
    return _error(501, "Search each resource type: POST /Users/.search or /Groups/.search.")


# --- users -----------------------------------------------------------------------------------


async def _user_listing(
    request: Request[Any, Any, Any], ctx: TenantContext, params: dict[str, Any]
) -> Response[bytes]:
    page = await scim.list_users(
        ctx,
        params.get("filter"),
        _int(params.get("startIndex"), "startIndex"),
        _int(params.get("count"), "count"),
    )
    base = base_url()
    attributes, excluded = (
        _names(params.get("attributes")),
        _names(params.get("excludedAttributes")),
    )
    documents = [
        project(scim.user_document(user, base), attributes, excluded) for user in page.items
    ]
    return scim_response(list_response(documents, page.total, page.start_index))


@get("/Users")
async def list_users(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    return await _user_listing(request, ctx, dict(request.query_params))


@post("/Users/.search", status_code=200)
async def search_users(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    return await _user_listing(request, ctx, _search_params(await _body(request)))


@post("/Users")
async def create_user(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    user = await scim.create_user(ctx, await _body(request))
    document = scim.user_document(user, base_url())
    response = scim_response(_shown(request, document), 201)
    response.headers["location"] = document["meta"]["location"]
    return response


@get("/Users/{user_id:str}")
async def get_user(
    request: Request[Any, Any, Any], ctx: Ctx, user_id: FromPath[str]
) -> Response[bytes]:
    user = await scim.get_user(ctx, user_id)
    return scim_response(_shown(request, scim.user_document(user, base_url())))


@put("/Users/{user_id:str}")
async def replace_user(
    request: Request[Any, Any, Any], ctx: Ctx, user_id: FromPath[str]
) -> Response[bytes]:
    user = await scim.replace_user(ctx, user_id, await _body(request))
    return scim_response(_shown(request, scim.user_document(user, base_url())))


@patch("/Users/{user_id:str}")
async def patch_user(
    request: Request[Any, Any, Any], ctx: Ctx, user_id: FromPath[str]
) -> Response[bytes]:
    user = await scim.patch_user(ctx, user_id, await _body(request))
    return scim_response(_shown(request, scim.user_document(user, base_url())))


@delete("/Users/{user_id:str}", status_code=204)
async def delete_user(ctx: Ctx, user_id: FromPath[str]) -> None:
    await scim.delete_user(ctx, user_id)


# --- groups ----------------------------------------------------------------------------------


async def _group_listing(
    request: Request[Any, Any, Any], ctx: TenantContext, params: dict[str, Any]
) -> Response[bytes]:
    attributes, excluded = (
        _names(params.get("attributes")),
        _names(params.get("excludedAttributes")),
    )
    with_members = "members" not in excluded and (not attributes or "members" in attributes)
    page = await scim.list_groups(
        ctx,
        params.get("filter"),
        _int(params.get("startIndex"), "startIndex"),
        _int(params.get("count"), "count"),
        with_members=with_members,
    )
    base = base_url()
    documents = [
        project(scim.group_document(group, base), attributes, excluded) for group in page.items
    ]
    return scim_response(list_response(documents, page.total, page.start_index))


def _search_params(body: Any) -> dict[str, Any]:
    """A SearchRequest body as the query parameters of a listing."""
    if not isinstance(body, dict):
        raise ScimInvalid("invalidSyntax", "Send a SearchRequest object.")
    params: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("attributes", "excludedAttributes") and isinstance(value, list):
            params[key] = ",".join(str(item) for item in value)
        elif key in ("filter", "startIndex", "count") and value is not None:
            params[key] = str(value)
    return params


@get("/Groups")
async def list_groups(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    return await _group_listing(request, ctx, dict(request.query_params))


@post("/Groups/.search", status_code=200)
async def search_groups(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    return await _group_listing(request, ctx, _search_params(await _body(request)))


@post("/Groups")
async def create_group(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    group = await scim.create_group(ctx, await _body(request))
    document = scim.group_document(group, base_url())
    response = scim_response(_shown(request, document), 201)
    response.headers["location"] = document["meta"]["location"]
    return response


@get("/Groups/{group_id:str}")
async def get_group(
    request: Request[Any, Any, Any], ctx: Ctx, group_id: FromPath[str]
) -> Response[bytes]:
    group = await scim.get_group(ctx, group_id)
    return scim_response(_shown(request, scim.group_document(group, base_url())))


@put("/Groups/{group_id:str}")
async def replace_group(
    request: Request[Any, Any, Any], ctx: Ctx, group_id: FromPath[str]
) -> Response[bytes]:
    group = await scim.replace_group(ctx, group_id, await _body(request))
    return scim_response(_shown(request, scim.group_document(group, base_url())))


@patch("/Groups/{group_id:str}")
async def patch_group(
    request: Request[Any, Any, Any], ctx: Ctx, group_id: FromPath[str]
) -> Response[bytes]:
    group = await scim.patch_group(ctx, group_id, await _body(request))
    return scim_response(_shown(request, scim.group_document(group, base_url())))


@delete("/Groups/{group_id:str}", status_code=204)
async def delete_group(ctx: Ctx, group_id: FromPath[str]) -> None:
    await scim.delete_group(ctx, group_id)


@get("/{rest:path}")
async def unknown(rest: FromPath[str]) -> Response[bytes]:
    """Any other path under /scim/v2: a SCIM 404, not an HTML page."""
    raise NotFound()


scim_router = Router(
    path=PATH,
    guards=[scim_bearer],
    dependencies={"ctx": Provide(_ctx, sync_to_thread=False)},
    exception_handlers=EXCEPTION_HANDLERS,
    include_in_schema=False,
    route_handlers=[
        provider_config,
        list_resource_types,
        get_resource_type,
        list_schemas,
        get_schema,
        search_everything,
        list_users,
        search_users,
        create_user,
        get_user,
        replace_user,
        patch_user,
        delete_user,
        list_groups,
        search_groups,
        create_group,
        get_group,
        replace_group,
        patch_group,
        delete_group,
        unknown,
    ],
)
