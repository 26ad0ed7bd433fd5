"""The organization's own target profiles in the console, `/o/{slug}/target-profiles…`: the
list, the creation and edit form (competences by area, topics within them, a level cap per
competence) and archiving.

Members read them (`org:campaigns:read`); owners and admins change them
(`org:campaigns:manage`). A campaign freezes the version it was created with, so editing a
profile never changes a running campaign.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from campaigns.content import current_bank
from campaigns.profile_catalogue import MAX_LEVEL
from campaigns.target_profiles import (
    TargetProfile,
    TargetProfileFields,
    archive_target_profile,
    create_target_profile,
    get_target_profile,
    list_target_profiles,
    update_target_profile,
)
from core.errors import Invalid, UserError
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, locale_of, redirect, render

READ = {"permission": Permission.CAMPAIGNS_READ}
MANAGE = {"permission": Permission.CAMPAIGNS_MANAGE}


def _framework(locale: str) -> list[dict[str, Any]]:
    """Areas → competences → topics of the current bank, titled in `locale`."""

    def title(text: Any) -> str:
        return str(text.get(locale) or text.get("en") or next(iter(text.values()), ""))

    return [
        {
            "code": area.code,
            "title": title(area.title),
            "competences": [
                {
                    "code": c.code,
                    "title": title(c.title),
                    "tubes": [{"code": t.code, "title": title(t.title)} for t in c.tubes],
                }
                for c in area.competences
            ],
        }
        for area in current_bank().areas
    ]


def _fields(form: Any) -> TargetProfileFields:
    competences = (
        [v for v in form.getall("competences") if isinstance(v, str)]
        if ("competences" in form)
        else []
    )
    tubes = [v for v in form.getall("tubes") if isinstance(v, str)] if "tubes" in form else []
    caps: dict[str, int] = {}
    for code in competences:
        raw = form.get(f"max_level_{code}")
        if not raw:
            continue
        if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 1:
            raise Invalid("A level cap is a level from 1 to 8.", field="max_levels")
        caps[code] = int(raw)
    return TargetProfileFields(
        name=str(form.get("name") or ""),
        description=str(form.get("description") or ""),
        competences=competences,
        tubes=tubes,
        max_levels=caps,
    )


def _values(profile: TargetProfile | None, form: Any = None) -> dict[str, Any]:
    """What the form shows: a stored profile, or what was just submitted."""
    if form is not None:
        chosen = [v for v in form.getall("competences")] if "competences" in form else []
        return {
            "name": form.get("name") or "",
            "description": form.get("description") or "",
            "competences": chosen,
            "tubes": [v for v in form.getall("tubes")] if "tubes" in form else [],
            "max_levels": {c: str(form.get(f"max_level_{c}") or "") for c in chosen},
        }
    if profile is None:
        return {"competences": [], "tubes": [], "max_levels": {}}
    spec = profile.spec
    return {
        "name": profile.name,
        "description": profile.description,
        "competences": list(spec.competences),
        "tubes": list(spec.tubes),
        "max_levels": {code: str(level) for code, level in spec.max_levels},
    }


async def _form_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    profile: TargetProfile | None,
    values: dict[str, Any],
    error: UserError | None = None,
) -> Template:
    context: dict[str, Any] = {
        "profile": profile,
        "framework": _framework(locale_of(request)),
        "levels": range(1, MAX_LEVEL + 1),
    }
    template = "console/target_profile.html"
    if error is None:
        return render(request, template, ctx=ctx, values=values, **context)
    return form_error(request, template, error, values, ctx=ctx, **context)


@get("/target-profiles", opt=READ)
async def target_profiles_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    profiles = await list_target_profiles(ctx, include_archived=True)
    return render(request, "console/target_profiles.html", ctx=ctx, profiles=profiles)


@get("/target-profiles/new", opt=MANAGE)
async def target_profile_new(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _form_page(request, ctx, None, _values(None))


@post("/target-profiles", opt=MANAGE)
async def target_profile_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await request.form()
    try:
        profile = await create_target_profile(ctx, _fields(form))
    except UserError as error:
        return await _form_page(request, ctx, None, _values(None, form), error)
    flash(request, "The target profile {name} is saved.", name=profile.name)
    return redirect(f"/o/{ctx.tenant.slug}/target-profiles")


@get("/target-profiles/{profile_id:str}", opt=READ)
async def target_profile_page(
    request: Request[Any, Any, Any], ctx: Ctx, profile_id: FromPath[str]
) -> Template:
    profile = await get_target_profile(ctx, profile_id)
    return await _form_page(request, ctx, profile, _values(profile))


@post("/target-profiles/{profile_id:str}", opt=MANAGE)
async def target_profile_update(
    request: Request[Any, Any, Any], ctx: Ctx, profile_id: FromPath[str]
) -> Template | Redirect:
    form = await request.form()
    try:
        profile = await update_target_profile(ctx, profile_id, _fields(form))
    except UserError as error:
        if error.status_code == 404:
            raise
        current = await get_target_profile(ctx, profile_id)
        return await _form_page(request, ctx, current, _values(current, form), error)
    flash(
        request,
        "The target profile {name} is saved (version {version}). Running campaigns keep the "
        "version they started with.",
        name=profile.name,
        version=profile.version,
    )
    return redirect(f"/o/{ctx.tenant.slug}/target-profiles")


@post("/target-profiles/{profile_id:str}/archive", opt=MANAGE)
async def target_profile_archive(
    request: Request[Any, Any, Any], ctx: Ctx, profile_id: FromPath[str]
) -> Redirect:
    await archive_target_profile(ctx, profile_id)
    flash(request, "The target profile is archived: new campaigns can no longer choose it.")
    return redirect(f"/o/{ctx.tenant.slug}/target-profiles")


handlers = [
    target_profiles_page,
    target_profile_new,
    target_profile_create,
    target_profile_page,
    target_profile_update,
    target_profile_archive,
]
