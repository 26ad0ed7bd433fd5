"""Learners in the tenant console, `/o/{slug}/learners…`: the list (search, group filter,
pages), the import of a CSV file with its report, and a template file to fill in.

Every member reads the learners (`org:learners:read`); owners and admins import them
(`org:learners:import`). An import writes nothing unless every row is good (ADR 0011): the
report page lists every bad row with its line and column as the spreadsheet shows them.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import Redirect, Response, Template

from campaigns import learner_listing
from campaigns.learner_csv import MAX_BYTES, MAX_ROWS, template_csv
from campaigns.learner_import import ImportResult, import_learners
from campaigns.learner_listing import LearnerRow
from campaigns.learners import count_learners, learner_groups
from core.errors import Invalid, NotFound, UserError
from core.i18n import translate
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, locale_of, redirect, render, session_of

READ = {"permission": Permission.LEARNERS_READ}
IMPORT = {"permission": Permission.LEARNERS_IMPORT}
#: Bodies up to this size reach the import, which refuses files over `MAX_BYTES` with its own
#: message; larger ones get the generic "too large" page.
UPLOAD_LIMIT = 3 * MAX_BYTES
#: Problems listed on the report page (the count of the rest is shown): the report waits in
#: the session, which Redis and every process's local copies hold, so it stays small.
SHOWN_PROBLEMS = 100
#: The longest cell value a listed problem quotes, in characters.
SHOWN_VALUE = 200
TOO_LARGE_MESSAGE = "This file is larger than {max} MB. Split it into several files."


@get("/learners", opt=READ)
async def learners_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    query = request.query_params
    values = {key: (query.get(key) or "") for key in ("q", "group")}
    errors: dict[str, str] = {}
    learners: list[LearnerRow] = []
    next_cursor: str | None = None
    try:
        page = await learner_listing.list_learners(
            ctx, query.get("cursor"), search=values["q"], group=values["group"], order="name"
        )
        learners, next_cursor = page.items, page.next_cursor
    except UserError as error:
        if isinstance(error, NotFound):
            raise
        field = "q" if error.field == "search" else error.field  # the form's name for it
        errors[field or "__all__"] = translate(locale_of(request), error.message, **error.params)
    return render(
        request,
        "console/learners.html",
        status=422 if errors else 200,
        ctx=ctx,
        learners=learners,
        next_cursor=next_cursor,
        groups=await learner_groups(ctx),
        total=await count_learners(ctx),
        values=values,
        errors=errors,
        limits={"mb": MAX_BYTES // (1024 * 1024), "rows": MAX_ROWS},
    )


#: The session key of the last import's report, shown once by the import page (Post/Redirect/
#: Get: the report's page is a GET, so reloading or bookmarking it never answers 405).
REPORT_KEY = "learners_import_report"


def _keep_report(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    *,
    result: ImportResult | None = None,
    error: UserError | None = None,
    filename: str = "",
) -> Redirect:
    """Keep the import's report (a refused file, the bad rows, or what a check found) in the
    session, untranslated, for the import page of this organization only, and send the
    browser to that page."""
    problems = result.problems if result else ()
    page = f"/o/{ctx.tenant.slug}/learners/import"
    session_of(request)[REPORT_KEY] = {
        "page": page,
        "result": None
        if result is None
        else {
            "rows": result.rows,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "encoding": result.encoding,
            "ignored_columns": list(result.ignored_columns),
            "dry_run": result.dry_run,
        },
        "problems": [
            {
                "line": p.line,
                "column": p.column,
                "letter": p.letter,
                "value": p.value[:SHOWN_VALUE],
                "reason": p.reason,
                "params": dict(p.params),
            }
            for p in problems[:SHOWN_PROBLEMS]
        ],
        "bad": len(problems),
        "bad_lines": len({p.line for p in problems}),
        "error": None if error is None else {"message": error.message, "params": error.params},
        "filename": filename,
    }
    return redirect(page)


@get("/learners/import", opt=IMPORT)
async def learners_import_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    """The import form, with the report of the import just sent, once (422 when it was
    refused, so that the answer says so; reloading shows the form alone, 200)."""
    locale = locale_of(request)
    report: dict[str, Any] = {}
    kept_report = session_of(request).get(REPORT_KEY)
    if isinstance(kept_report, dict) and kept_report.get("page") == request.url.path:
        # Another organization's import page leaves it for its own (a person in several).
        report = session_of(request).pop(REPORT_KEY)
    error = report.get("error")
    kept = report.get("result")
    failed = error is not None or bool(report.get("bad"))
    return render(
        request,
        "console/learners_import.html",
        status=422 if failed else 200,
        ctx=ctx,
        result=SimpleNamespace(**kept) if kept else None,
        problems=[
            {**p, "reason": translate(locale, p["reason"], **p["params"])}
            for p in report.get("problems", ())
        ],
        hidden=max(report.get("bad", 0) - len(report.get("problems", ())), 0),
        bad_lines=report.get("bad_lines", 0),
        filename=report.get("filename", ""),
        errors={"file": translate(locale, error["message"], **error["params"])} if error else {},
        limits={"mb": MAX_BYTES // (1024 * 1024), "rows": MAX_ROWS},
    )


async def _upload(request: Request[Any, Any, Any]) -> tuple[UploadFile, bool]:
    """The uploaded file and whether only a check is asked; `Invalid` when there is none."""
    try:
        form = await request.form()
    except RequestEntityTooLarge:
        raise Invalid(TOO_LARGE_MESSAGE, field="file", max=MAX_BYTES // (1024 * 1024)) from None
    except ClientException:
        raise Invalid("Choose a CSV file to import.", field="file") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid("Choose a CSV file to import.", field="file")
    return upload, form.get("check_only") == "yes"


@post("/learners/import", opt=IMPORT, request_max_body_size=UPLOAD_LIMIT)
async def learners_import(request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
    filename = ""
    try:
        upload, check_only = await _upload(request)
        filename = upload.filename[:200]
        # One byte more than allowed is enough for the import to refuse the file by size.
        data = await upload.read(MAX_BYTES + 1)
        result = await import_learners(ctx, data, filename=filename, dry_run=check_only)
    except UserError as error:
        if isinstance(error, NotFound):
            raise
        return _keep_report(request, ctx, error=error, filename=filename)
    if result.problems or result.dry_run:
        return _keep_report(request, ctx, result=result, filename=filename)
    if result.task_id is not None:
        flash(
            request,
            "The file is checked: its {rows} learners are being imported. This page shows "
            "the progress.",
            rows=result.rows,
        )
        return redirect(f"/o/{ctx.tenant.slug}/tasks/{result.task_id}")
    flash(
        request,
        "Import done: {created} created, {updated} updated, {unchanged} unchanged.",
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )
    return redirect(f"/o/{ctx.tenant.slug}/learners")


@get("/learners/template.csv", opt=IMPORT)
async def learners_template(request: Request[Any, Any, Any], ctx: Ctx) -> Response[bytes]:
    """An example file in the person's language, to fill in and import."""
    name, content = template_csv(locale_of(request))
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


handlers = [learners_page, learners_import_page, learners_import, learners_template]
