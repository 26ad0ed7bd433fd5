"""Piccolo tables of the sso package. The tables themselves are made by hand-written SQL
migrations (ADR 0002: composite keys, row-level security); these classes name them for
Piccolo's app registry."""

from piccolo.columns import JSONB, UUID, Boolean, Bytea, Text, Timestamptz
from piccolo.table import Table

from core.database import DB


class SsoConnection(Table, tablename="sso_connection", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    protocol = Text()
    name = Text()
    enabled = Boolean(default=False)
    settings = JSONB(default="{}")
    secret = Bytea(null=True, default=None)
    role_mapping = JSONB(default="{}")
    default_role = Text(default="member")
    external_id_claim = Text(default="")
    allow_idp_initiated = Boolean(default=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()
