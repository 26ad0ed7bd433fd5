"""Exports of a campaign's results for its organizers: CSV streamed in bounded memory.

Only participations their owners shared appear (the same rule as the dashboard). The file is
UTF-8 with a byte-order mark (so spreadsheet software opens accents right), headers in the
organization's language, one column per competence of the campaign's profile and one per
area (the mean level of its competences in the profile). Rows come from a server-side
cursor, so 100,000 participations never sit in memory together.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from campaigns.access import require_reader
from campaigns.content import frozen_bank
from campaigns.service import access_campaign
from core.database import stream, transaction
from core.i18n import N_, translate
from tenants.context import TenantContext

BOM = "\ufeff"

#: Fixed columns, translated into the organization's language.
FIXED_HEADERS = (
    N_("Name"),
    N_("Email address"),
    N_("External identifier"),
    N_("Attempt"),
    N_("Started on"),
    N_("Completed on"),
    N_("Shared on"),
    N_("Global level"),
    N_("Score"),
)

_SHARED_RESULTS = """
SELECT l.name, l.email, p.external_id, p.attempt, p.created_at, p.completed_at, p.shared_at,
       r.level, r.score, r.competences
FROM participation p
JOIN learner l ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
JOIN result r ON r.tenant_id = p.tenant_id AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.status = 'shared'
ORDER BY p.shared_at, p.id
"""


def _title(texts: Mapping[str, str], locale: str) -> str:
    return texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _cell(value: Any) -> Any:
    """A text a spreadsheet would run as a formula (=, +, -, @…) is quoted with ' first."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(value) for value in values])
    return buffer.getvalue()


async def results_csv(
    ctx: TenantContext, campaign_id: UUID | str, locale: str
) -> tuple[str, AsyncIterator[str]]:
    """The file name and the lines of the campaign's shared results as CSV.

    Access is checked before the first line (404 alike for another tenant's campaign); the
    lines are produced while the caller sends them."""
    require_reader(ctx)
    async with transaction(ctx.tenant_id, ctx.actor.user_id):
        campaign, _ = await access_campaign(ctx, campaign_id)
    bank = frozen_bank(campaign.bank_version)
    competences = campaign.profile.competences
    areas = [
        (area, [c.code for c in area.competences if c.code in competences])
        for area in bank.areas
        if any(c.code in competences for c in area.competences)
    ]
    headers = [translate(locale, header) for header in FIXED_HEADERS]
    if campaign.external_id_label:
        headers[2] = campaign.external_id_label
    headers += [f"{code} {_title(bank.competences[code].title, locale)}" for code in competences]
    headers += [f"{area.code} {_title(area.title, locale)}" for area, _ in areas]

    async def lines() -> AsyncIterator[str]:
        yield BOM + _line(headers)
        async with transaction(ctx.tenant_id, ctx.actor.user_id):
            async for row in stream(_SHARED_RESULTS, ctx.tenant_id, campaign.id):
                levels = {
                    code: int(value.get("level", 0))
                    for code, value in json.loads(row["competences"]).items()
                }
                per_competence = [levels.get(code, 0) for code in competences]
                per_area = [
                    round(sum(levels.get(c, 0) for c in codes) / len(codes), 1)
                    for _, codes in areas
                ]
                yield _line(
                    [
                        row["name"],
                        row["email"] or "",
                        row["external_id"] or "",
                        row["attempt"],
                        _when(row["created_at"]),
                        _when(row["completed_at"]),
                        _when(row["shared_at"]),
                        row["level"],
                        row["score"],
                        *per_competence,
                        *per_area,
                    ]
                )

    return f"{campaign.code}-results.csv", lines()
