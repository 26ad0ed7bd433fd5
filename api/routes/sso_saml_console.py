"""SAML connections in the tenant console, `/o/{slug}/sso/saml/…`: the form to add one (the
IdP's metadata by URL or by file), and each connection's page, which shows what to give the
IdP (the SP's metadata URL, which is also its entity id, and its ACS URL), edits it, and links
to "test this connection". Enable, disable and delete are the connection list's buttons
(`api.routes.sso_console`).

Owners and admins only (`org:sso:manage`). Ids go through `sso.connections`' accessors, so
another organization's connection is the 404 of an unknown one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.routes.sso_saml import urls
from core.errors import Invalid, UserError
from sso import saml
from sso.connections import format_role_mapping, parse_role_mapping
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, redirect, render

MANAGE = {"permission": Permission.SSO_MANAGE}
TEMPLATE = "console/sso_saml_form.html"


async def _form(request: Request[Any, Any, Any]) -> tuple[dict[str, str], bytes | None]:
    """The form's text fields, and the metadata file's bytes when one was chosen."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    upload = form.get("idp_metadata_file")
    data = None
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(saml.METADATA_MAX_BYTES + 1)
    return values, data


async def _fields(
    values: dict[str, str], upload: bytes | None, *, required: bool
) -> saml.SamlConnectionFields:
    """The connection's fields; the metadata read from the file, else fetched from the URL
    (on an edit, neither keeps the IdP as it was)."""
    url = values.get("idp_metadata_url", "").strip()
    entity_id = values.get("idp_entity_id", "").strip()
    metadata = None
    if upload:
        metadata = saml.parse_idp_metadata(upload, entity_id)
    elif url:
        metadata = saml.parse_idp_metadata(await saml.HttpMetadataSource().fetch(url), entity_id)
    elif required:
        raise Invalid("Give the IdP's metadata: its URL, or its file.", field="idp_metadata_url")
    return saml.SamlConnectionFields(
        name=values.get("name", ""),
        metadata=metadata,
        metadata_url=url,
        want_signed=values.get("want_signed", "either"),
        allow_idp_initiated=values.get("allow_idp_initiated") == "yes",
        email_verified_trusted=values.get("email_verified_trusted") == "yes",
        role_mapping=parse_role_mapping(values.get("role_mapping")),
        default_role=values.get("default_role", "member"),
        external_id_claim=values.get("external_id_claim", ""),
    )


def _page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    values: dict[str, Any],
    *,
    connection: saml.SamlConnection | None = None,
    enabled: bool = False,
    error: UserError | None = None,
) -> Template:
    context: dict[str, Any] = {
        "connection": connection,
        "enabled": enabled,
        "sp": urls(ctx.tenant, connection.id) if connection else None,
        "want_signed_choices": saml.WANT_SIGNED,
    }
    if error is None:
        return render(request, TEMPLATE, ctx=ctx, values=values, **context)
    return form_error(request, TEMPLATE, error, values, ctx=ctx, **context)


@get("/sso/saml/new", opt=MANAGE)
async def saml_new_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return _page(request, ctx, {"want_signed": "either", "default_role": "member"})


@post("/sso/saml/new", opt=MANAGE)
async def saml_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    values, upload = await _form(request)
    try:
        fields = await _fields(values, upload, required=True)
        connection = await saml.create_saml_connection(ctx, fields, datetime.now(UTC))
    except UserError as error:
        return _page(request, ctx, values, error=error)
    flash(
        request,
        "The connection is saved, and disabled. Give the IdP the metadata URL below, test "
        "the connection, then enable it.",
    )
    return redirect(f"/o/{ctx.tenant.slug}/sso/saml/{connection.id}")


def _values(connection: saml.SamlConnection) -> dict[str, Any]:
    return {
        "name": connection.name,
        "idp_metadata_url": connection.idp_metadata_url,
        "idp_entity_id": connection.idp_entity_id,
        "want_signed": connection.want_signed,
        "allow_idp_initiated": "yes" if connection.allow_idp_initiated else "",
        "email_verified_trusted": "yes" if connection.email_verified_trusted else "",
        "role_mapping": format_role_mapping(connection.role_mapping),
        "default_role": connection.default_role,
        "external_id_claim": connection.external_id_claim,
    }


@get("/sso/saml/{connection_id:str}", opt=MANAGE)
async def saml_edit_page(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Template:
    connection = await saml.access_saml_connection(ctx, connection_id)
    return _page(
        request, ctx, _values(connection), connection=connection, enabled=connection.enabled
    )


@post("/sso/saml/{connection_id:str}", opt=MANAGE)
async def saml_update(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Template | Redirect:
    connection = await saml.access_saml_connection(ctx, connection_id)
    values, upload = await _form(request)
    try:
        fields = await _fields(values, upload, required=False)
        await saml.update_saml_connection(ctx, connection.id, fields)
    except UserError as error:
        if error.status_code == 404:
            raise
        return _page(
            request,
            ctx,
            values,
            connection=connection,
            enabled=connection.enabled,
            error=error,
        )
    flash(request, "The connection is saved.")
    return redirect(f"/o/{ctx.tenant.slug}/sso/saml/{connection.id}")


handlers = [saml_new_page, saml_create, saml_edit_page, saml_update]
