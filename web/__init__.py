"""What every HTML front shares (the tenant console and participant pages in `api`, the back
office in `admin`): sessions, guards, rendering, forms and notices, CSRF, error pages, the base
templates and the stylesheet. It imports `core` and the domain; nothing of `api` or `admin`."""
