"""Values stored in the database and shown translated with `_(value)` in the templates.

No source string spells them out as a msgid, so they are marked here for `pybabel extract`.
`tests/core/test_i18n.py` checks that these lists match the values the code accepts.
"""

from core.i18n import N_

#: tenants.permissions.Role
ROLES = (N_("owner"), N_("admin"), N_("member"))
#: tenants.organizations.STATUSES
STATUSES = (N_("trial"), N_("active"), N_("suspended"), N_("closed"))
#: tenants.organizations.KINDS
KINDS = (
    N_("company"),
    N_("local_authority"),
    N_("foreign_agency"),
    N_("school"),
    N_("other"),
)

#: the actions tenants/*.py record in the audit log (tenants.audit.record)
AUDIT_ACTIONS = (
    # a person's own account, told to their organizations (tenants/account_events.py)
    N_("account.password_changed"),
    N_("invitation.accepted"),
    N_("invitation.resent"),
    N_("invitation.revoked"),
    N_("member.added"),
    N_("member.invited"),
    N_("member.left"),
    N_("member.removed"),
    N_("member.role_changed"),
    N_("organization.created"),
    N_("organization.status_changed"),
    N_("organization.updated"),
    N_("token.created"),
    N_("token.revoked"),
    # campaigns (campaigns/service.py, campaigns/target_profiles.py, campaigns/participation/)
    N_("campaign.created"),
    N_("campaign.updated"),
    N_("campaign.duplicated"),
    N_("campaign.activated"),
    N_("campaign.closed"),
    N_("campaign.archived"),
    N_("campaign.results_exported"),
    N_("campaign.learners_invited"),
    N_("target_profile.created"),
    N_("target_profile.updated"),
    N_("target_profile.archived"),
    N_("participation.shared"),
    # problem reports on challenges (campaigns/problem_reports.py)
    N_("challenge.reported"),
    # learners (campaigns/learner_import.py)
    N_("learners.imported"),
    # background tasks (tenants/tasks.py)
    N_("task.started"),
    N_("task.file_downloaded"),
    # outgoing webhooks (tenants/webhooks/endpoints.py)
    N_("webhook.created"),
    N_("webhook.updated"),
    N_("webhook.enabled"),
    N_("webhook.disabled"),
    N_("webhook.deleted"),
    N_("webhook.tested"),
    N_("webhook.secret_revealed"),
    N_("webhook.secret_rotated"),
    N_("webhook.redelivered"),
    # single sign-on connections (sso/connections.py)
    N_("sso.connection.created"),
    N_("sso.connection.updated"),
    N_("sso.connection.enabled"),
    N_("sso.connection.disabled"),
    N_("sso.connection.deleted"),
    N_("sso.connection.tested"),
    # verified domains, SSO sign-ins and the sign-in policy (sso/domains.py,
    # sso/provisioning.py, sso/policy.py)
    N_("sso.domain_added"),
    N_("sso.domain_verified"),
    N_("sso.domain_check_failed"),
    N_("sso.domain_removed"),
    N_("sso.domain_published_in_development"),
    N_("sso.account_created"),
    N_("sso.sign_in"),
    N_("sso.refused"),
    N_("sso.policy_changed"),
    # SCIM provisioning (sso/scim.py, sso/scim_tokens.py)
    N_("scim.token_created"),
    N_("scim.token_revoked"),
    N_("scim.user_created"),
    N_("scim.user_updated"),
    N_("scim.user_deleted"),
    N_("scim.group_created"),
    N_("scim.group_updated"),
    N_("scim.group_deleted"),
    N_("scim.mapping_set"),
    N_("scim.mapping_removed"),
    N_("member.suspended"),
    N_("member.reactivated"),
    # billing: subscriptions, invoices, payments, seat packs and reminders (billing/*.py)
    N_("billing.subscription.trialing"),
    N_("billing.subscription.active"),
    N_("billing.subscription.past_due"),
    N_("billing.subscription.suspended"),
    N_("billing.subscription.canceled"),
    N_("billing.subscription.changed"),
    N_("billing.subscription.change_undone"),
    N_("billing.subscription.gateway"),
    N_("billing.subscription.renewed"),
    N_("billing.invoice.drafted"),
    N_("billing.invoice.issued"),
    N_("billing.invoice.voided"),
    N_("billing.credit_note.issued"),
    N_("billing.payment.recorded"),
    N_("billing.profile.updated"),
    N_("billing.seat_pack.added"),
    N_("billing.seat_pack.removed"),
    N_("billing.dunning.notice"),
    N_("billing.subscription.trial_extended"),
    N_("billing.subscription.trial_set"),
    N_("billing.discount.granted"),
    N_("billing.invoice.credited"),
    # the back office acting in a tenant (admin/, tenants/staff.py, tenants/organizations.py)
    N_("impersonation.started"),
    N_("impersonation.stopped"),
    N_("organization.suspended"),
    N_("organization.reactivated"),
    N_("organization.closed"),
    N_("organization.features_changed"),
)

#: the actions only the staff trail records (`tenants.staff_trail.record_staff_action`)
STAFF_ACTIONS = (
    N_("staff.created"),
    N_("staff.role_changed"),
    N_("staff.disabled"),
    N_("staff.second_factor_enrolled"),
    N_("staff.second_factor_reset"),
    N_("tenant.onboarded"),
    N_("plan.created"),
    N_("plan.edited"),
    N_("plan.price_set"),
    N_("plan.retired"),
    N_("plan.restored"),
    N_("plan.deleted"),
    N_("gateway_event.retried"),
    N_("content.challenge.reviewed"),
    N_("content.challenge.retired"),
    N_("content.challenge.restored"),
    N_("content.calibration.started"),
    N_("content.bank.imported"),
)

#: Kinds of background task (`tenants.tasks.start_task(ctx, kind, …)`), shown with `_(kind)`.
TASK_KINDS = (N_("campaign.results_export"), N_("learners.import"))

#: Webhook event types a delivery log shows with `_(event)` besides the audited ones
#: (`tenants.webhooks.events.TEST_EVENT`).
WEBHOOK_EVENTS = (N_("ping"),)
