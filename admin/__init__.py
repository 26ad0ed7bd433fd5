"""The back office, mounted at `/admin`: for our own staff (account managers, support, content
editors, superadmins), never for tenants. It imports `web` and the domain, never `api`."""
