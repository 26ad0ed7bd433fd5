"""What goes wrong in a sign-in through an identity provider."""

from __future__ import annotations

from core.errors import Forbidden


class SignInRefused(Forbidden):
    """A protocol check failed: the person is not signed in.

    `reason` is a stable code for the audit log and the tests (`oidc.issuer`, `oidc.nonce`,
    `saml.signature`, `saml.replay`, `provisioning.domain`…); `detail` says in English what
    was wrong, for the administrator reading the log or testing the connection (it may name
    the values received, never a secret). The message shown to the person is translated from
    `message`.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        message: str = "The sign-in through your organization's identity provider was refused.",
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
