"""Route handlers, one module per area: public pages, sign-in, the tenant console, the API."""
