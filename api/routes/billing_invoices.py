"""The tenant's invoices in the console, `/o/{slug}/billing/invoices…`: the list (invoices
and credit notes, with what is still due), each one's PDF (`<id>.pdf`: a Factur-X PDF/A-3
for a French public buyer) and, for those buyers, its EN 16931 XML (`<id>.xml`, what Chorus
Pro takes).

Admins and owners only (`org:billing:read`). Drafts, other organizations' ids and made-up
ones are the same 404 (`billing.invoices.get_invoice`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Response, Template

from billing import invoices, pdf
from core.errors import NotFound
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import locale_of, render

READ = {"permission": Permission.BILLING_READ}


@get("/billing/invoices", opt=READ)
async def invoices_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    listed = await invoices.list_invoices(ctx)
    locale = locale_of(request)
    return render(
        request,
        "console/billing_invoices.html",
        ctx=ctx,
        invoices=listed,
        money=lambda invoice, amount: invoice.money(amount).format(locale),
    )


@get("/billing/invoices/{invoice_id:str}", opt=READ)
async def invoice_file(
    request: Request[Any, Any, Any], ctx: Ctx, invoice_id: FromPath[str]
) -> Response[bytes]:
    """`<id>.pdf` or `<id>.xml`; anything else is a 404."""
    ident, _, suffix = invoice_id.rpartition(".")
    if suffix == "pdf":
        document = await pdf.invoice_pdf(ctx, ident, locale_of(request))
    elif suffix == "xml":
        document = await pdf.invoice_xml(ctx, ident)
    else:
        raise NotFound()
    return Response(
        document.content,
        media_type=document.content_type,
        headers={
            "content-disposition": f'attachment; filename="{document.file_name}"',
            "cache-control": "private, no-store",
        },
    )


handlers = [invoices_page, invoice_file]
