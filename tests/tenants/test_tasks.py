"""Background tasks for people: started by a member and audited, run as that member (and failed
once they left), seen by their starter and by holders of `org:tasks:read` only, downloaded and
purged in every organization. The runner itself is `tests/core/test_tasks.py`'s."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest

from core import database, jobs
from core.errors import Forbidden, Gone, NotFound, UserError
from core.tasks import TaskRun, task_job
from tenants import tasks
from tenants.context import Actor, TenantContext
from tenants.members import remove_member
from tenants.permissions import Permission
from tenants.tasks import starter_context
from tests.conftest import HeldQueue, TenantFixture
from tests.core.test_tasks import A_TASK
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")

#: The role each test job acted with, by task id.
ROLES: dict[UUID, str | None] = {}


@task_job(acting_as=starter_context)
async def _test_member_task(run: TaskRun[TenantContext], outcome: str) -> None:
    """Notes the role it acts with, then ends as told."""
    ROLES[run.task_id] = run.ctx.role
    match outcome:
        case "file":
            await run.finish("count.txt", "text/plain", b"counted to 10")
        case "refused":
            raise UserError("Nothing to count in {place}.", place="the void")
        case _:
            pass  # ends without a file


async def _run(ctx: TenantContext, outcome: str = "file") -> UUID:
    """Start a task for `ctx`'s person and wait for its job."""
    task_id = await tasks.start_task(ctx, "test.count", "_test_member_task", [outcome], total=10)
    queue = jobs.get_queue()
    if isinstance(queue, HeldQueue):
        await queue.run()
    else:
        assert isinstance(queue, jobs.InProcessQueue)
        await queue.drain()
    return task_id


async def _body(ctx: TenantContext, task_id: UUID) -> bytes:
    _, chunks = await tasks.download(ctx, task_id)
    return b"".join([chunk async for chunk in chunks])


async def test_a_task_is_seen_by_its_starter_and_by_holders_of_tasks_read(
    tenant_a: TenantFixture,
) -> None:
    member, owner = tenant_a.member_ctx, tenant_a.owner_ctx
    assert not member.can(Permission.TASKS_READ)
    assert owner.can(Permission.TASKS_READ)
    theirs = replace(A_TASK, created_by=member.actor.user_id)
    others = replace(A_TASK, created_by=uuid4())
    orphan = replace(A_TASK, created_by=None)
    assert tasks.may_see(member, theirs)
    assert not tasks.may_see(member, others)
    assert not tasks.may_see(member, orphan)
    assert all(tasks.may_see(owner, task) for task in (theirs, others, orphan))
    # an actor who is no person starts no task, and sees none without the permission
    program = replace(member, actor=Actor(kind="api_token"))
    assert not tasks.may_see(program, orphan)


async def test_a_task_runs_as_its_starter_and_is_audited(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.member_ctx
    task_id = await _run(ctx)
    assert ROLES[task_id] == "member"  # the job acts as the person who started it
    task = await tasks.get_task(ctx, task_id)
    assert task.status == "done"
    assert (task.done, task.total, task.percent) == (10, 10, 100)
    assert task.created_by == tenant_a.member.id
    assert task.downloadable
    assert await _body(ctx, task_id) == b"counted to 10"
    assert next(t.id for t in await tasks.list_tasks(ctx)) == task_id
    async with as_tenant(tenant_a.id):
        events = await database.fetch(
            "SELECT action, target_id, details FROM audit_event WHERE tenant_id = $1 "
            "AND action = 'task.started'",
            tenant_a.id,
        )
    assert [(e["target_id"], e["details"]) for e in events] == [
        (str(task_id), '{"kind": "test.count"}')
    ]


async def test_a_task_starts_with_the_change_that_needs_it(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    ctx = tenant_a.owner_ctx
    async with database.tenant_transaction(ctx):
        task_id = await tasks.start_task(ctx, "test.count", "_test_member_task", ["file"])
        assert held.held == []  # not before the caller's transaction commits
    assert [name for name, _ in held.held] == ["_test_member_task"]
    assert (await tasks.get_task(ctx, task_id)).status == "queued"


async def test_only_a_member_acting_as_a_person_starts_a_task(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.owner_ctx
    for someone in (replace(ctx, actor=Actor(kind="api_token")), replace(ctx, role=None)):
        with pytest.raises(Forbidden):
            await tasks.start_task(someone, "test.count", "_test_member_task", ["file"])
    with pytest.raises(Forbidden):
        await tasks.list_tasks(replace(ctx, role=None))
    program = replace(ctx, actor=Actor(kind="api_token"), permissions=frozenset(), role="member")
    assert await tasks.list_tasks(program) == []  # no person: no task of its own


async def test_a_task_without_a_file_has_nothing_to_download(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a.owner_ctx, "nothing")
    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert task.status == "done"
    assert not task.downloadable
    with pytest.raises(NotFound):
        await tasks.download(tenant_a.owner_ctx, task_id)


async def test_a_failed_task_has_nothing_to_download(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a.owner_ctx, "refused")
    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert (task.status, task.message) == ("failed", "Nothing to count in {place}.")
    with pytest.raises(NotFound):
        await tasks.download(tenant_a.owner_ctx, task_id)


async def test_the_task_of_a_removed_member_fails(tenant_a: TenantFixture, held: HeldQueue) -> None:
    task_id = await tasks.start_task(
        tenant_a.member_ctx, "test.count", "_test_member_task", ["file"]
    )
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            tenant_a.member.id,
        )
    await remove_member(tenant_a.owner_ctx, rows[0]["id"])
    await held.run()
    assert task_id not in ROLES
    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert (task.status, task.message) == ("failed", tasks.LEFT)


async def test_people_see_their_own_tasks_and_admins_every_task(tenant_a: TenantFixture) -> None:
    mine = await _run(tenant_a.member_ctx)
    owners = await _run(tenant_a.owner_ctx)
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_a.member_ctx, owners)
    with pytest.raises(NotFound):
        await tasks.download(tenant_a.member_ctx, owners)
    assert [t.id for t in await tasks.list_tasks(tenant_a.member_ctx)] == [mine]
    assert (await tasks.get_task(tenant_a.owner_ctx, mine)).id == mine
    assert await _body(tenant_a.owner_ctx, mine) == b"counted to 10"
    assert [t.id for t in await tasks.list_tasks(tenant_a.owner_ctx)] == [owners, mine]
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_a.member_ctx, "not-a-uuid")


async def test_another_tenants_task_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    task_id = await _run(tenant_a.owner_ctx)
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_b.owner_ctx, task_id)
    with pytest.raises(NotFound):
        await tasks.download(tenant_b.owner_ctx, task_id)
    assert await tasks.list_tasks(tenant_b.owner_ctx) == []
    assert (await tasks.get_task(tenant_a.owner_ctx, task_id)).status == "done"


async def _expire(tenant_id: UUID, task_id: UUID) -> None:
    async with as_tenant(tenant_id):
        await database.execute(
            "UPDATE task SET expires_at = now() - interval '1 minute' WHERE id = $1", task_id
        )


async def test_the_hourly_purge_expires_files_in_every_organization(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    expired, fresh = await _run(tenant_a.owner_ctx), await _run(tenant_a.owner_ctx)
    theirs = await _run(tenant_b.owner_ctx)
    await _expire(tenant_a.id, expired)
    await _expire(tenant_b.id, theirs)

    changed = await tasks.purge_expired_tasks({})

    assert changed >= 2
    task = await tasks.get_task(tenant_a.owner_ctx, expired)
    assert task.purged_at is not None
    assert not task.downloadable
    with pytest.raises(Gone):
        await tasks.download(tenant_a.owner_ctx, expired)
    with pytest.raises(Gone):
        await tasks.download(tenant_b.owner_ctx, theirs)  # every tenant is purged
    assert await _body(tenant_a.owner_ctx, fresh) == b"counted to 10"


async def test_an_unknown_task_id_is_not_found(tenant_a: TenantFixture) -> None:
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_a.owner_ctx, uuid4())
