"""The content editors' back office (`/admin/content`): the framework and the challenge bank,
a participant's view of any challenge in each of its languages, per-challenge statistics,
the problem-report queue, calibration runs, and the import of a bank file.

Every page needs `StaffPermission.CONTENT_TRIAGE` (content editors and superadmins) and
shows no tenant and no person: statistics are the global, anonymous ledger and calibration
results, reports are read through `campaigns.problem_reports` (the same functions and rules
as `jalon reports`).

Decisions:
- The import validates the uploaded file with the engine, shows its report (errors with their
  place, warnings) and the challenges new, changed and removed against the bank in use; on a
  confirmed step (with a reason) it stores the file as `<data_dir>/banks/<version>/bank.json`.
  It does not put that version in use: campaigns freeze a bank version and each process serves
  only the versions of the one bank directory it loads (`campaigns.content`), so switching it
  from a web request would strand running campaigns in the other processes. Putting a stored
  version in use stays an operator's step.
- A calibration run only reports (parameters, their change, fit, drift): the bank's parameters
  belong to a bank version, and change through a new version, by import. Starting one reads
  every organization's answers: it needs a reason, recorded with it.
- A challenge id in a path is checked against the bank's id format first (`admin.paths`):
  anything else (a NUL, an overlong id) is a 404, never a database error.
- A challenge is retired, and restored, from the report queue or from its preview, with the
  same confirmation and reason; each goes back where it started. From the preview, any
  challenge of the bank in use, reported or not.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from admin.paths import CHALLENGE_ID, path_token
from campaigns import calibration_runs, problem_reports
from campaigns.content import (
    CHALLENGE_STATUSES,
    MAX_BANK_BYTES,
    ChallengeFilter,
    challenge_counts,
    check_bank_upload,
    check_filter,
    current_bank,
    find_challenges,
    pending_check,
    store_bank_upload,
    stored_banks,
)
from core.errors import Invalid, NotFound, UserError
from engine.bank import CHALLENGE_TYPES
from tenants.permissions import StaffPermission
from tenants.staff import clean_reason
from web.guards import StaffCtx
from web.pages import flash, form_error, form_of, locale_of, redirect, render

CONTENT = {"permission": StaffPermission.CONTENT_TRIAGE}
PAGE_SIZE = 50
SECTION = "content"


def _page(request: Request[Any, Any, Any], template: str, **context: Any) -> Template:
    return render(request, template, section=SECTION, **context)


# --- the framework and the bank ---------------------------------------------------------------


@get("/content", opt=CONTENT, name="admin_content")
async def framework(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    bank = current_bank()
    withdrawn = await problem_reports.withdrawn_challenges()
    return _page(
        request,
        "admin/content.html",
        bank=bank,
        counts=challenge_counts(bank, withdrawn),
        text_locale=_text_locale(request, bank.locales),
    )


def _text_locale(request: Request[Any, Any, Any], locales: tuple[str, ...]) -> str:
    """The bank language closest to the page's (titles are written in the bank's)."""
    wanted = locale_of(request)
    return wanted if wanted in locales else locales[0]


@get("/content/challenges", opt=CONTENT)
async def challenges(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    competence: FromQuery[str] = "",
    status: FromQuery[str] = "",
    locale: FromQuery[str] = "",
    type: FromQuery[str] = "",
    search: FromQuery[str] = "",
    page: FromQuery[str] = "1",
) -> Template:
    bank = current_bank()
    values = {
        "competence": competence,
        "status": status,
        "locale": locale,
        "type": type,
        "search": search,
    }
    context: dict[str, Any] = {
        "bank": bank,
        "statuses": CHALLENGE_STATUSES,
        "types": CHALLENGE_TYPES,
        "text_locale": _text_locale(request, bank.locales),
    }
    try:
        chosen = check_filter(bank, ChallengeFilter(**values))
        number = int(page) if page.isdigit() else 0
        if number < 1:
            raise Invalid("Choose a page number.", field="page")
    except UserError as error:
        return form_error(
            request,
            "admin/content_challenges.html",
            error,
            values,
            section=SECTION,
            found=[],
            page_number=1,
            pages=1,
            total=0,
            query="",
            **context,
        )
    withdrawn = await problem_reports.withdrawn_challenges()
    found = find_challenges(bank, chosen, withdrawn)
    pages = max(1, -(-len(found) // PAGE_SIZE))
    number = min(number, pages)
    query = urlencode({k: v for k, v in values.items() if v})
    return _page(
        request,
        "admin/content_challenges.html",
        values=values,
        found=found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
        withdrawn=withdrawn,
        total=len(found),
        page_number=number,
        pages=pages,
        query=query,
        **context,
    )


@get("/content/challenges/{challenge_id:str}", opt=CONTENT)
async def challenge_preview(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    challenge_id: FromPath[str],
    locale: FromQuery[str] = "",
) -> Template:
    bank = current_bank()
    challenge = bank.challenge_by_id.get(path_token(challenge_id, CHALLENGE_ID))
    if challenge is None:
        raise NotFound()
    shown = locale or _text_locale(request, challenge.locales)
    if shown not in challenge.locales:
        raise Invalid("This question is not written in that language.", field="locale")
    statistics = await calibration_runs.dangerously_bank_statistics(staff)
    [row] = [item for item in statistics.items if item.challenge_id == challenge.id]
    skill = bank.skills[challenge.skill]
    return _page(
        request,
        "admin/content_challenge.html",
        bank=bank,
        challenge=challenge,
        shown=shown,
        skill=skill,
        tube=bank.tubes[skill.tube],
        competence=bank.competences[skill.competence],
        triage=await problem_reports.challenge_triage(staff, challenge.id),
        stats=row,
        statistics=statistics,
    )


# --- statistics ----------------------------------------------------------------------------


@get("/content/stats", opt=CONTENT)
async def stats(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    sort: FromQuery[str] = "challenge_id",
    order: FromQuery[str] = "asc",
) -> Template:
    statistics = await calibration_runs.dangerously_bank_statistics(staff, sort, order)
    return _page(
        request,
        "admin/content_stats.html",
        statistics=statistics,
        sort=sort,
        order=order,
    )


# --- the problem-report queue -------------------------------------------------------------------


@get("/content/reports", opt=CONTENT)
async def reports(
    request: Request[Any, Any, Any], staff: StaffCtx, status: FromQuery[str] = ""
) -> Template:
    assert staff.user_id is not None
    flags = await problem_reports.list_flags(staff.user_id, status or None)
    return _page(
        request,
        "admin/content_reports.html",
        flags=flags,
        chosen_status=status,
        statuses=problem_reports.STATUSES,
    )


@post("/content/reports/{challenge_id:str}/review", opt=CONTENT)
async def report_review(
    request: Request[Any, Any, Any], staff: StaffCtx, challenge_id: FromPath[str]
) -> Redirect:
    path_token(challenge_id, CHALLENGE_ID)
    form = await form_of(request)
    await problem_reports.review_reported(staff, challenge_id, form.get("reason", ""))
    flash(request, "{challenge} is reviewed: it is selected again.", challenge=challenge_id)
    return redirect("/admin/content/reports")


#: Where a retirement or a restoration starts, and goes back to: the queue or the preview.
FROM_REPORTS = "reports"
FROM_PREVIEW = "challenges"


def _back(origin: str, challenge_id: str) -> str:
    if origin == FROM_PREVIEW:
        return f"/admin/content/challenges/{quote(challenge_id, safe='')}"
    return "/admin/content/reports"


def _confirm_page(
    request: Request[Any, Any, Any],
    action: str,
    challenge_id: str,
    origin: str,
    form: dict[str, str],
    error: UserError | None = None,
) -> Template:
    bank = current_bank()
    context: dict[str, Any] = {
        "section": SECTION,
        "action": action,
        "challenge_id": challenge_id,
        "challenge": bank.challenge_by_id.get(challenge_id),
        "text_locale": _text_locale(request, bank.locales),
        "origin": origin,
        "form_action": f"/admin/content/{origin}/{quote(challenge_id, safe='')}/{action}",
        "back": _back(origin, challenge_id),
    }
    if error is not None:
        return form_error(request, "admin/content_report_confirm.html", error, form, **context)
    return render(request, "admin/content_report_confirm.html", values=form, **context)


async def _triage(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    challenge_id: str,
    action: str,
    origin: str = FROM_REPORTS,
) -> Template | Redirect:
    """Retire or restore: the first post shows the confirmation (with the reason to give),
    the confirmed one does it, then goes back to the queue or the preview (`origin`)."""
    path_token(challenge_id, CHALLENGE_ID)
    if origin == FROM_PREVIEW and challenge_id not in current_bank().challenge_by_id:
        raise NotFound()
    form = await form_of(request)
    if form.get("confirm") != "yes":
        return _confirm_page(request, action, challenge_id, origin, form)
    try:
        if action == "retire":
            await problem_reports.retire_reported(staff, challenge_id, form.get("reason", ""))
        else:
            await problem_reports.restore_reported(staff, challenge_id, form.get("reason", ""))
    except Invalid as error:
        return _confirm_page(request, action, challenge_id, origin, form, error)
    if action == "retire":
        flash(request, "{challenge} is retired: no test serves it.", challenge=challenge_id)
    else:
        flash(request, "{challenge} is restored: it is selected again.", challenge=challenge_id)
    return redirect(_back(origin, challenge_id))


@post("/content/reports/{challenge_id:str}/retire", opt=CONTENT)
async def report_retire(
    request: Request[Any, Any, Any], staff: StaffCtx, challenge_id: FromPath[str]
) -> Template | Redirect:
    return await _triage(request, staff, challenge_id, "retire")


@post("/content/reports/{challenge_id:str}/restore", opt=CONTENT)
async def report_restore(
    request: Request[Any, Any, Any], staff: StaffCtx, challenge_id: FromPath[str]
) -> Template | Redirect:
    return await _triage(request, staff, challenge_id, "restore")


@post("/content/challenges/{challenge_id:str}/retire", opt=CONTENT)
async def challenge_retire(
    request: Request[Any, Any, Any], staff: StaffCtx, challenge_id: FromPath[str]
) -> Template | Redirect:
    """Retire a challenge of the bank from its preview, reported or not."""
    return await _triage(request, staff, challenge_id, "retire", FROM_PREVIEW)


@post("/content/challenges/{challenge_id:str}/restore", opt=CONTENT)
async def challenge_restore(
    request: Request[Any, Any, Any], staff: StaffCtx, challenge_id: FromPath[str]
) -> Template | Redirect:
    return await _triage(request, staff, challenge_id, "restore", FROM_PREVIEW)


# --- calibration -------------------------------------------------------------------------------


async def _calibration_page(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    values: dict[str, str] | None = None,
    error: UserError | None = None,
) -> Template:
    context: dict[str, Any] = {
        "section": SECTION,
        "runs": await calibration_runs.dangerously_calibration_runs(staff),
        "models": calibration_runs.MODELS,
        "bank": current_bank(),
    }
    shown = values or {
        "model": calibration_runs.MODELS[0],
        "min_answers": str(calibration_runs.DEFAULT_MIN_ANSWERS),
    }
    if error is not None:
        return form_error(request, "admin/content_calibration.html", error, shown, **context)
    return render(request, "admin/content_calibration.html", values=shown, **context)


@get("/content/calibration", opt=CONTENT)
async def calibration(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    return await _calibration_page(request, staff)


@post("/content/calibration", opt=CONTENT)
async def calibration_start(
    request: Request[Any, Any, Any], staff: StaffCtx
) -> Template | Redirect:
    form = await form_of(request)
    try:
        run_id = await calibration_runs.dangerously_start_calibration(
            staff,
            form.get("model"),
            form.get("min_answers"),
            # required here (the service takes it as optional, for the command line)
            clean_reason(form.get("reason", "")),
        )
    except Invalid as error:
        return await _calibration_page(request, staff, form, error)
    flash(request, "The calibration is queued: this page shows its progress.")
    return redirect(f"/admin/content/calibration/{run_id}")


@get("/content/calibration/{run_id:uuid}", opt=CONTENT)
async def calibration_report(
    request: Request[Any, Any, Any], staff: StaffCtx, run_id: FromPath[UUID]
) -> Template:
    run, items = await calibration_runs.dangerously_calibration_report(staff, run_id)
    return _page(request, "admin/content_calibration_run.html", run=run, items=items)


# --- importing a bank file -----------------------------------------------------------------------


def _import_page(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    *,
    error: UserError | None = None,
    values: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    context.update(
        section=SECTION,
        bank=current_bank(),
        stored=stored_banks(staff),
        max_mb=MAX_BANK_BYTES // (1024 * 1024),
    )
    if error is not None:
        return form_error(request, "admin/content_import.html", error, values or {}, **context)
    return render(request, "admin/content_import.html", values=values or {}, **context)


@get("/content/import", opt=CONTENT)
async def import_page(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    return _import_page(request, staff)


@post("/content/import", opt=CONTENT, request_max_body_size=MAX_BANK_BYTES + 64 * 1024)
async def import_check(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    """Check an uploaded file: the report and the difference, nothing applied."""
    try:
        try:
            form = await request.form()
        except RequestEntityTooLarge:
            raise Invalid(
                "The file is too large: {max} MB at most.",
                field="file",
                max=MAX_BANK_BYTES // (1024 * 1024),
            ) from None
        except ClientException:
            raise Invalid("Choose a bank file (JSON) to import.", field="file") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("Choose a bank file (JSON) to import.", field="file")
        data = await upload.read(MAX_BANK_BYTES + 1)
        # parsing a large bank takes a while: off the event loop
        check = await asyncio.to_thread(check_bank_upload, staff, data, upload.filename)
    except Invalid as error:
        return _import_page(request, staff, error=error)
    status = 200 if check.valid else 422
    page = _import_page(request, staff, check=check)
    page.status_code = status
    return page


@post("/content/import/confirm", opt=CONTENT)
async def import_confirm(request: Request[Any, Any, Any], staff: StaffCtx) -> Template | Redirect:
    form = await form_of(request)
    try:
        check = await store_bank_upload(staff, form.get("token", ""), form.get("reason", ""))
    except Invalid as error:
        if error.field == "reason":
            # back to the confirmation, with the report of the same (still pending) file
            try:
                return _import_page(
                    request,
                    staff,
                    error=error,
                    values=form,
                    check=pending_check(staff, form.get("token", "")),
                )
            except Invalid:
                pass
        return _import_page(request, staff, error=error, values=form)
    flash(
        request,
        "Version {version} is stored ({challenges} challenges). It is not in use yet.",
        version=check.version,
        challenges=check.challenges,
    )
    return redirect("/admin/content/import")


handlers: list[Any] = [
    framework,
    challenges,
    challenge_preview,
    challenge_retire,
    challenge_restore,
    stats,
    reports,
    report_review,
    report_retire,
    report_restore,
    calibration,
    calibration_start,
    calibration_report,
    import_page,
    import_check,
    import_confirm,
]
