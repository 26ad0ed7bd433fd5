"""The guards every HTML front uses, on a small application of their own: the real session
middleware, error handlers and database, with one page per kind of guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar import Litestar, Request, Router, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.stores.memory import MemoryStore

from core.settings import Settings
from tenants.permissions import Permission, StaffPermission
from tenants.staff import make_staff
from tests.api.running import asgi_transport
from tests.conftest import TenantFixture, make_user
from web.front import EXCEPTION_HANDLERS, session_middleware, template_config
from web.guards import (
    Ctx,
    StaffCtx,
    second_factor_passed,
    signed_in,
    staff_context,
    staff_member,
    tenant_context,
    tenant_member,
)
from web.pages import session_of


async def _second_factor_set_up(user_id: UUID) -> None:
    import pyotp

    from tenants.staff import begin_enrolment, confirm_enrolment

    secret = await begin_enrolment(user_id)
    await confirm_enrolment(user_id, pyotp.TOTP(secret).now())


@post("/test/sign-in/{user_id:str}")
async def sign_in_as(
    request: Request[Any, Any, Any], user_id: FromPath[str], second_factor: FromQuery[bool] = False
) -> str:
    session_of(request)["user_id"] = user_id
    if second_factor:  # what the back office's code page records once the TOTP code is right
        second_factor_passed(request, UUID(user_id))
    return "signed in"


@get("/mine", guards=[signed_in])
async def mine() -> str:
    return "signed in page"


@get("/read", guards=[tenant_member(Permission.CAMPAIGNS_READ)])
async def read(ctx: Ctx) -> str:
    return f"{ctx.tenant.slug} {ctx.role}"


@get("/manage", guards=[tenant_member(Permission.CAMPAIGNS_MANAGE)])
async def manage(ctx: Ctx) -> str:
    return f"manage {ctx.tenant.slug}"


@get("/declared", opt={"permission": Permission.MEMBERS_INVITE})
async def declared(ctx: Ctx) -> str:
    return f"invite {ctx.tenant.slug}"


@get("/strict", opt={"permission": Permission.CAMPAIGNS_MANAGE})
async def strict(ctx: Ctx) -> str:
    return f"strict {ctx.tenant.slug}"


@get("/unnamed")
async def unnamed(ctx: Ctx) -> str:
    return f"nothing asked in {ctx.tenant.slug}"


@get("/triage", guards=[staff_member(StaffPermission.CONTENT_TRIAGE)])
async def triage(staff: StaffCtx) -> str:
    return f"{staff.role} {staff.actor.kind}"


@get("/book", guards=[staff_member(StaffPermission.TENANTS_MANAGE)])
async def book(staff: StaffCtx) -> str:
    return f"book {staff.role}"


@pytest.fixture(scope="module")
def guarded_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    templates = Path(tmp_path_factory.mktemp("templates"))
    return Litestar(
        route_handlers=[
            sign_in_as,
            mine,
            Router(
                path="/o/{slug:str}",
                route_handlers=[read, manage],
                dependencies={"ctx": Provide(tenant_context, sync_to_thread=False)},
            ),
            Router(
                path="/o/{slug:str}",
                guards=[tenant_member()],
                route_handlers=[declared, unnamed],
                dependencies={"ctx": Provide(tenant_context, sync_to_thread=False)},
            ),
            Router(
                path="/o/{slug:str}/section",
                guards=[tenant_member(Permission.CAMPAIGNS_READ)],
                route_handlers=[strict],
                dependencies={"ctx": Provide(tenant_context, sync_to_thread=False)},
            ),
            Router(
                path="/staff",
                route_handlers=[triage, book],
                dependencies={"staff": Provide(staff_context, sync_to_thread=False)},
            ),
        ],
        middleware=[session_middleware(settings, MemoryStore())],
        template_config=template_config(templates),
        exception_handlers=EXCEPTION_HANDLERS,
    )


@pytest.fixture
async def visitor(guarded_app: Litestar, db: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = asgi_transport(guarded_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers={"accept-language": "en"}
    ) as client:
        yield client


async def _as(
    client: httpx.AsyncClient, user_id: Any, *, second_factor: bool = True
) -> httpx.AsyncClient:
    """Sign `user_id` in (staff with the second factor passed, unless told otherwise)."""
    response = await client.post(
        f"/test/sign-in/{user_id}", params={"second_factor": str(second_factor).lower()}
    )
    assert response.status_code == 201
    return client


async def test_signed_out_visitors_are_sent_to_sign_in(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    for path in ("/mine", f"/o/{tenant_a.slug}/read", "/staff/triage"):
        response = await visitor.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


async def test_a_member_holds_the_permissions_of_their_role(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await _as(visitor, tenant_a.member.id)
    reading = await visitor.get(f"/o/{tenant_a.slug}/read")
    assert (reading.status_code, reading.text) == (200, f"{tenant_a.slug} member")
    assert (await visitor.get(f"/o/{tenant_a.slug}/manage")).status_code == 403
    assert (await visitor.get(f"/o/{tenant_a.slug}/declared")).status_code == 403


async def test_the_owner_passes_the_declared_permission_too(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await _as(visitor, tenant_a.owner.id)
    assert (await visitor.get(f"/o/{tenant_a.slug}/manage")).status_code == 200
    declared = await visitor.get(f"/o/{tenant_a.slug}/declared")
    assert (declared.status_code, declared.text) == (200, f"invite {tenant_a.slug}")


async def test_another_tenant_is_a_404_like_a_missing_one(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await _as(visitor, tenant_a.owner.id)
    theirs = await visitor.get(f"/o/{tenant_b.slug}/read")
    nowhere = await visitor.get("/o/no-such-organization/read")
    assert theirs.status_code == nowhere.status_code == 404


async def test_the_back_office_is_a_404_to_people_who_are_not_staff(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await _as(visitor, tenant_a.owner.id)  # an organization's owner is not our staff
    assert (await visitor.get("/staff/triage")).status_code == 404
    assert (await visitor.get("/staff/book")).status_code == 404


async def test_staff_hold_the_permissions_of_their_staff_role(
    visitor: httpx.AsyncClient, db: str
) -> None:
    editor = await make_user("Content Editor")
    await make_staff(editor.id, "content_editor")
    await _second_factor_set_up(editor.id)
    await _as(visitor, editor.id)
    triage = await visitor.get("/staff/triage")
    assert (triage.status_code, triage.text) == (200, "content_editor staff")
    assert (await visitor.get("/staff/book")).status_code == 403


async def test_staff_who_have_not_passed_the_second_factor_are_sent_to_it(
    visitor: httpx.AsyncClient, db: str
) -> None:
    chief = await make_user("Chief Without Code")
    await make_staff(chief.id, "superadmin")
    await _second_factor_set_up(chief.id)
    await _as(visitor, chief.id, second_factor=False)
    response = await visitor.get("/staff/book")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/second-factor?next=%2Fstaff%2Fbook"


async def test_a_superadmin_holds_every_staff_permission(
    visitor: httpx.AsyncClient, db: str
) -> None:
    chief = await make_user("Chief Admin")
    await make_staff(chief.id, "superadmin")
    await _second_factor_set_up(chief.id)
    await _as(visitor, chief.id)
    assert (await visitor.get("/staff/triage")).status_code == 200
    assert (await visitor.get("/staff/book")).text == "book superadmin"


async def test_support_staff_are_refused_what_their_role_does_not_hold(
    visitor: httpx.AsyncClient, db: str
) -> None:
    helper = await make_user("Support Person")
    await make_staff(helper.id, "support")  # the table's check admits the fourth role
    await _second_factor_set_up(helper.id)
    await _as(visitor, helper.id)
    assert (await visitor.get("/staff/triage")).status_code == 403
    assert (await visitor.get("/staff/book")).status_code == 403


async def test_a_sections_guard_never_stands_in_for_a_stricter_handler(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await _as(visitor, tenant_a.member.id)  # reads campaigns, does not manage them
    assert (await visitor.get(f"/o/{tenant_a.slug}/section/strict")).status_code == 403
    await _as(visitor, tenant_a.owner.id)
    assert (await visitor.get(f"/o/{tenant_a.slug}/section/strict")).status_code == 200


async def test_a_guarded_handler_that_names_no_permission_is_refused(
    visitor: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await _as(visitor, tenant_a.owner.id)  # holds every permission, yet nothing was asked
    assert (await visitor.get(f"/o/{tenant_a.slug}/unnamed")).status_code == 403


async def test_a_read_only_refusal_outside_an_impersonation_is_a_server_error() -> None:
    import asyncpg
    from litestar.testing import RequestFactory

    from web.front import read_only_handler

    @get("/x")
    async def x() -> str:
        return "x"

    app = Litestar(route_handlers=[x], template_config=template_config())
    factory = RequestFactory(app=app)
    error = asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction")
    plain = factory.get("/x", headers={"accept": "application/json"})
    plain.scope["state"] = {}
    assert read_only_handler(plain, error).status_code == 500
    viewing = factory.get("/x", headers={"accept": "application/json"})
    viewing.scope["state"] = {"impersonation": {"slug": "acme"}}
    assert read_only_handler(viewing, error).status_code == 403
