"""Background tasks in the tenant console, `/o/{slug}/tasks…`: the recent tasks, one task's
progress (refreshing itself while it runs, without JavaScript) and its file's download.

Every member may open these pages; each sees the tasks they started, and holders of
`org:tasks:read` see every task. Other tasks, and other organizations' ids, are the 404 of a
missing one (`tenants.tasks.get_task`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Stream, Template

from tenants import tasks
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import render

READ = {"permission": Permission.ORGANIZATION_READ}


@get("/tasks", opt=READ)
async def tasks_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return render(request, "console/tasks.html", ctx=ctx, tasks=await tasks.list_tasks(ctx))


@get("/tasks/{task_id:str}", opt=READ)
async def task_page(request: Request[Any, Any, Any], ctx: Ctx, task_id: FromPath[str]) -> Template:
    task = await tasks.get_task(ctx, task_id)
    return render(request, "console/task.html", ctx=ctx, task=task)


@get("/tasks/{task_id:str}/download", opt=READ)
async def task_download(ctx: Ctx, task_id: FromPath[str]) -> Stream:
    """The task's file, streamed part by part; 404 before it is ready, 410 once expired."""
    task, chunks = await tasks.download(ctx, task_id)
    headers = {"content-disposition": f'attachment; filename="{task.file_name}"'}
    if task.file_size is not None:
        headers["content-length"] = str(task.file_size)
    return Stream(
        chunks,
        media_type=task.content_type or "application/octet-stream",
        headers=headers,
    )


handlers = [tasks_page, task_page, task_download]
