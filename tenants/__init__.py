"""Organizations (the tenants), users, memberships, invitations, roles, audit log, API tokens."""
