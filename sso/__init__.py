"""Per-tenant OIDC and SAML connections, domain verification, JIT provisioning and SCIM.

Not built yet (issue: SSO); the package exists so the layout, the packaging and the
dependency-direction test already cover it.
"""
