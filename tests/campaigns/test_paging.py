"""Keyset paging shared by the listings: cursors round-trip and refuse forgeries with a
message, page sizes are bounded, and a listing's conditions are numbered as they are bound.
How pages follow one another is tested on the listings themselves
(test_campaign_listing.py, test_learner_listing.py)."""

from __future__ import annotations

import base64
from uuid import uuid4

import pytest

from campaigns.campaign_listing import list_campaigns_page
from campaigns.learner_listing import list_learners
from campaigns.paging import MAX_LIMIT, Query, check_limit, decode_cursor, encode_cursor
from core.errors import Invalid
from tests.campaigns.listing_helpers import T0
from tests.conftest import TenantFixture


def test_a_cursor_round_trips_and_is_url_safe() -> None:
    ident = uuid4()
    text = encode_cursor("n", T0, ident)
    assert all(ch.isalnum() or ch in "-_" for ch in text)
    at = decode_cursor(text)
    assert at is not None
    assert (at.direction, at.stamp, at.ident) == ("n", T0, ident)
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "forged",
        "!!!!",
        encode_cursor("n", T0, uuid4())[:-3],
        base64.urlsafe_b64encode(f"x|{T0.isoformat()}|{uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"n|2021-01-01T00:00:00|{uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"n|{T0.isoformat()}|1234".encode()).decode(),
        base64.urlsafe_b64encode(b"n|yesterday|x").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        # at the edge of the calendar: cannot be converted to UTC
        base64.urlsafe_b64encode(f"n|0001-01-01T00:00:00+14:00|{uuid4()}".encode()).decode(),
    ],
)
def test_a_forged_cursor_is_refused_with_a_message(cursor: str) -> None:
    with pytest.raises(Invalid) as caught:
        decode_cursor(cursor)
    assert (caught.value.field, caught.value.message) == ("cursor", "This page link is not valid.")


@pytest.mark.parametrize("limit", [0, -1, 101, 10_000])
async def test_a_limit_out_of_bounds_is_refused(tenant_a: TenantFixture, limit: int) -> None:
    with pytest.raises(Invalid, match="Ask for between 1 and"):
        await list_campaigns_page(tenant_a.owner_ctx, None, limit)
    with pytest.raises(Invalid, match="Ask for between 1 and"):
        await list_learners(tenant_a.owner_ctx, None, limit)


def test_a_limit_within_bounds_is_kept() -> None:
    assert check_limit(1) == 1
    assert check_limit(MAX_LIMIT) == MAX_LIMIT
    for refused in (0, MAX_LIMIT + 1, True):
        with pytest.raises(Invalid) as caught:
            check_limit(refused)
        assert (caught.value.field, caught.value.params) == ("limit", {"max": MAX_LIMIT})


def test_a_query_numbers_its_parameters_after_the_ones_it_starts_with() -> None:
    query = Query("tenant", "campaign")
    assert query.clause == ""
    query.where(f"p.status = {query.param('shared')}")
    query.where(f"{query.param('Sales')} = ANY (l.groups)")
    assert query.args == ["tenant", "campaign", "shared", "Sales"]
    assert query.clause == " AND p.status = $3 AND $4 = ANY (l.groups)"
