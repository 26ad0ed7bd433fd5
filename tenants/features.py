"""Per-tenant features: the switches our account managers turn on or off for one organization
(a contract without API access, say), on top of what its role permissions allow.

The registry is `Feature` (a key each) and `FEATURES` (its label and its default). An
organization stores only its overrides, in `organization.features` (jsonb: key -> bool); a key
it does not hold has its default, so a new feature needs no migration and existing tenants
keep the default. Services enforce a feature with `require_feature` inside their transaction:
today the API (`tenants.tokens`: creating a token, and every request made with one) and the
webhooks (`tenants.webhooks.endpoints.create_endpoint`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.database import DB, execute, fetch, tenant_transaction
from core.errors import Conflict, Forbidden, Invalid
from core.i18n import N_
from tenants import audit
from tenants.context import TenantContext


class Feature(StrEnum):
    API_ACCESS = "api_access"
    WEBHOOKS = "webhooks"
    SSO = "sso"
    SCIM = "scim"
    EXPORTS = "exports"


@dataclass(frozen=True)
class FeatureInfo:
    #: a msgid
    label: str
    default: bool
    #: whether a service refuses what the feature covers when it is off (`require_feature`);
    #: the others are recorded for the contract, and enforced when their services check them
    enforced: bool = False


FEATURES: dict[Feature, FeatureInfo] = {
    Feature.API_ACCESS: FeatureInfo(N_("API access (API tokens)"), True, enforced=True),
    Feature.WEBHOOKS: FeatureInfo(N_("Webhooks"), True, enforced=True),
    Feature.SSO: FeatureInfo(N_("Single sign-on (OIDC, SAML)"), True),
    Feature.SCIM: FeatureInfo(N_("User provisioning (SCIM)"), True),
    Feature.EXPORTS: FeatureInfo(N_("Exports of results"), True),
}

FEATURE_OFF = N_("This feature is not enabled for your organization. Contact us to enable it.")
UNKNOWN_FEATURE = N_("Unknown feature.")
CHANGED_MEANWHILE = N_(
    "Someone else changed these features since this page was shown: nothing was changed."
    " Reload the page and choose again."
)


def _overrides(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded or {})


def enabled(tenant_features: Mapping[str, Any] | str | None, key: Feature | str) -> bool:
    """Whether `key` is on for an organization whose stored overrides are `tenant_features`
    (the `organization.features` column, as a mapping or its JSON text): its override when it
    holds a boolean one, else the feature's default. An unknown key is off."""
    try:
        feature = Feature(key)
    except ValueError:
        return False
    value = _overrides(tenant_features).get(feature.value)
    return value if isinstance(value, bool) else FEATURES[feature].default


def effective(tenant_features: Mapping[str, Any] | str | None) -> dict[Feature, bool]:
    """Every feature of the registry, on or off for these overrides."""
    return {feature: enabled(tenant_features, feature) for feature in Feature}


async def _stored(ctx: TenantContext, *, lock: bool = False) -> dict[str, Any]:
    rows = await fetch(
        # a constant clause; the id is a bound parameter
        "SELECT features FROM organization WHERE id = $1"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        ctx.tenant_id,
    )
    return _overrides(rows[0]["features"]) if rows else {}


async def require_feature(ctx: TenantContext, key: Feature) -> None:
    """`Forbidden` (with a message) unless `key` is on for the context's organization; one
    statement, in the caller's open transaction or its own."""
    if DB.current_transaction.get() is not None:
        stored = await _stored(ctx)
    else:
        async with tenant_transaction(ctx):
            stored = await _stored(ctx)
    if not enabled(stored, key):
        raise Forbidden(FEATURE_OFF)


async def tenant_features(ctx: TenantContext) -> dict[Feature, bool]:
    """The organization's features, on or off."""
    async with tenant_transaction(ctx):
        return effective(await _stored(ctx))


async def set_features(
    ctx: TenantContext,
    changes: Mapping[str, bool],
    *,
    expected: Mapping[str, bool] | None = None,
) -> dict[Feature, bool]:
    """Turn features on or off (`changes`: key -> on). Our staff (or the system) only: a
    tenant's own people never switch what their contract includes (`Forbidden`). A value
    equal to the default removes the override. Audited as `organization.features_changed`
    with what changed; nothing changed records nothing. The features after the change.

    `expected` (key -> on): the state the person saw of the features they change; when the
    stored state of one of them differs (someone changed it meanwhile), `Conflict` and
    nothing is written (checked under the organization row's lock)."""
    if ctx.actor.kind not in ("staff", "system"):
        raise Forbidden()
    wanted: dict[Feature, bool] = {}
    for key, value in changes.items():
        try:
            feature = Feature(key)
        except ValueError:
            raise Invalid(UNKNOWN_FEATURE, field="features") from None
        if not isinstance(value, bool):
            raise Invalid(UNKNOWN_FEATURE, field="features")
        wanted[feature] = value
    async with tenant_transaction(ctx):
        stored = await _stored(ctx, lock=True)
        before = effective(stored)
        for feature in wanted:
            seen = (expected or {}).get(feature.value)
            if seen is not None and seen != before[feature]:
                raise Conflict(CHANGED_MEANWHILE, field="features")
        overrides = {k: v for k, v in stored.items() if k in {f.value for f in Feature}}
        for feature, value in wanted.items():
            if value == FEATURES[feature].default:
                overrides.pop(feature.value, None)
            else:
                overrides[feature.value] = value
        after = effective(overrides)
        changed = {
            feature.value: {"from": before[feature], "to": after[feature]}
            for feature in Feature
            if before[feature] != after[feature]
        }
        if changed:
            await execute(
                "UPDATE organization SET features = $2::jsonb, updated_at = now() WHERE id = $1",
                ctx.tenant_id,
                json.dumps(overrides, sort_keys=True),
            )
            await audit.record(
                ctx,
                "organization.features_changed",
                "organization",
                ctx.tenant_id,
                changes=changed,
            )
    return after
