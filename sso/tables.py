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


class SsoDomain(Table, tablename="sso_domain", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    domain = Text()
    token = Text()
    verified_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class VerifiedDomain(Table, tablename="verified_domain", db=DB):
    """Global: each verified domain once, with the organization that verified it."""

    domain = Text(primary_key=True)
    organization_id = UUID()
    verified_at = Timestamptz()


class SsoPolicy(Table, tablename="sso_policy", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    sso_required_for_members = Boolean(default=False)
    break_glass_user_id = UUID(null=True, default=None)
    updated_at = Timestamptz()


class SamlAssertionSeen(Table, tablename="saml_assertion_seen", db=DB):
    """The replay cache: assertion ids accepted per connection, until they expire."""

    id = UUID(primary_key=True)
    tenant_id = UUID()
    connection_id = UUID()
    assertion_id = Text()
    seen_at = Timestamptz()
    expires_at = Timestamptz()


class SamlResponseReceived(Table, tablename="saml_response_received", db=DB):
    """A response POSTed to an ACS, held for the browser's redirected GET."""

    id = UUID(primary_key=True)
    tenant_id = UUID()
    connection_id = UUID()
    saml_response = Text()
    relay_state = Text()
    received_at = Timestamptz()
    expires_at = Timestamptz()


class ScimToken(Table, tablename="scim_token", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    prefix = Text()
    token_hash = Bytea()
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class DirectoryUser(Table, tablename="directory_user", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    user_name = Text()
    external_id = Text(null=True, default=None)
    given_name = Text(default="")
    family_name = Text(default="")
    display_name = Text(default="")
    emails = JSONB(default="[]")
    active = Boolean(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class DirectoryGroup(Table, tablename="directory_group", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    display_name = Text()
    external_id = Text(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class DirectoryGroupMember(Table, tablename="directory_group_member", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    group_id = UUID()
    directory_user_id = UUID()
    created_at = Timestamptz()


class DirectoryGroupMapping(Table, tablename="directory_group_mapping", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    group_name = Text()
    role = Text()
    learner_group = Text(default="")
    created_at = Timestamptz()
