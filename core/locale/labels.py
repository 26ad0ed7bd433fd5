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
