"""People: accounts, passwords, login throttling, password reset and magic links.

Users are global (one person, many organizations). Tokens sent by mail are random, stored as
SHA-256 digests, single-use and short-lived.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import asyncpg

from core.database import execute, fetch, global_transaction
from core.errors import (
    Conflict,
    Gone,
    Invalid,
    InvalidFields,
    TooManyRequests,
    Unauthenticated,
    raise_all,
)
from core.i18n import translate
from core.mail import queue_mail
from core.ratelimit import RateLimiter
from core.security import hash_password, needs_rehash, new_token, token_digest, verify_password
from core.settings import Settings
from core.validation import (
    clean_email,
    clean_locale,
    clean_new_password,
    clean_password,
    clean_text,
)

RESET_TTL = timedelta(hours=1)
MAGIC_LINK_TTL = timedelta(minutes=15)
#: A sign-up link's life (and that of the sign-in link an address with an account gets
#: instead): longer than a sign-in link's, as the person may read their mail on another device.
SIGNUP_LINK_TTL = timedelta(hours=1)
#: Links (sign-in, reset, sign-up) mailed to one address within `LINK_MAIL_WINDOW_SECONDS`:
#: asked from one client, and from anywhere (`_reserve_link_mail`).
LINK_MAILS_PER_CLIENT = 5
LINK_MAILS_PER_ADDRESS = 20
LINK_MAIL_WINDOW_SECONDS = 3600
EMAIL_VERIFICATION_TTL = timedelta(hours=48)
#: Verification mails a person may ask for again within the window (`resend_email_verification`).
VERIFICATION_MAILS_PER_WINDOW = 3
VERIFICATION_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class UserAccount:
    id: UUID
    email: str
    name: str
    locale: str
    email_verified: bool
    is_staff: bool = False
    staff_role: str | None = None
    #: whether their staff second factor is set up (a superadmin's reset takes it away)
    staff_second_factor: bool = False
    #: their sessions signed in before this moment are over (a password change, ADR 0027)
    sessions_valid_after: datetime | None = None

    def session_is_current(self, signed_in_at: float | None) -> bool:
        """Whether a session that signed in at `signed_in_at` (epoch seconds; None for one
        that did not say) still holds: it began after the last password change."""
        if self.sessions_valid_after is None:
            return True
        return signed_in_at is not None and signed_in_at >= self.sessions_valid_after.timestamp()


@dataclass(frozen=True)
class NewAccount:
    """A new account's details as `check_new_account` accepted them (the email is empty when
    it comes from elsewhere, an invitation say)."""

    name: str
    #: None for a person who signs in by links sent to their address (`password_optional`)
    password: str | None
    locale: str
    email: str = ""


def check_new_account(
    *,
    name: str | None,
    password: str | None,
    password_confirm: str | None,
    locale: str | None,
    default_locale: str,
    email: str | None = None,
    terms: bool | None = None,
    password_optional: bool = False,
) -> NewAccount:
    """What a person typed to create their account, checked the same way by every form that
    creates one (signup, invitation acceptance, a participant's account): `Invalid` naming
    the field, for two passwords that differ, terms not accepted, the email, name, language
    and password; several at once (`InvalidFields`, in that order) when several are wrong,
    so that the form shows every error, a short password beside a confirmation that differs.

    `email` is None when the form does not ask for it (an invitation names the address);
    `terms` is None when the form does not ask for it (an invitation, accepted as the
    organization's member). A missing `locale` is `default_locale`. With `password_optional`
    (a participant's sign-up, which may go by link), both password fields left empty make an
    account without a password (`password` None).
    """
    errors: list[Invalid] = []

    def checked(check: Callable[[], str]) -> str:
        try:
            return check()
        except Invalid as error:
            errors.append(error)
            return ""

    if password != password_confirm:
        errors.append(Invalid("The two passwords differ.", field="password_confirm"))
    if terms is not None and not terms:
        errors.append(Invalid("Accept the terms of use to continue.", field="terms"))
    account = NewAccount(
        email=checked(lambda: clean_email(email)) if email is not None else "",
        name=checked(lambda: clean_text(name, "name", max_length=200)),
        locale=checked(lambda: clean_locale(locale or default_locale)),
        password=(
            None
            if password_optional and not password and not password_confirm
            else checked(lambda: clean_password(password))
        ),
    )
    raise_all(errors)
    return account


def _account(row: dict[str, Any]) -> UserAccount:
    return UserAccount(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        locale=row["locale"],
        email_verified=row["email_verified"],
        is_staff=row.get("staff_role") is not None,
        staff_role=row.get("staff_role"),
        staff_second_factor=bool(row.get("staff_second_factor")),
        # Read strictly: a statement that forgot it would keep ended sessions alive.
        sessions_valid_after=row["sessions_valid_after"],
    )


def account_of(row: dict[str, Any]) -> UserAccount:
    """The account of a row holding `_USER_SQL`'s columns (`id`, `email`, `name`, `locale`,
    `email_verified`, `sessions_valid_after`, `staff_role`, `staff_second_factor`), read
    together with something else (`tenants.organizations.dangerously_enter_tenant_by_slug`)."""
    return _account(row)


_USER_SQL = """
SELECT u.id, u.email, u.name, u.locale, u.email_verified, u.password_hash, u.is_active,
       u.sessions_valid_after, s.role AS staff_role,
       s.totp_confirmed_at IS NOT NULL AS staff_second_factor
FROM user_account u LEFT JOIN staff_member s ON s.user_id = u.id AND s.disabled_at IS NULL
"""


async def _insert_user(
    email: str, name: str, password: str | None, locale: str, verified: bool
) -> dict[str, Any]:
    user_id = uuid4()
    password_hash = await hash_password(password) if password else None
    try:
        await execute(
            """INSERT INTO user_account (id, email, name, locale, password_hash, email_verified)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            user_id,
            email,
            name,
            locale,
            password_hash,
            verified,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "An account already exists with this email address.", field="email"
        ) from None
    rows = await fetch(_USER_SQL + " WHERE u.id = $1", user_id)
    return rows[0]


async def insert_account(
    email: str, name: str, password: str | None, locale: str, *, verified: bool = False
) -> UserAccount:
    """Create an account inside the caller's transaction (signup, invitation acceptance)."""
    email = clean_email(email)
    name = clean_text(name, "name", max_length=200)
    locale = clean_locale(locale)
    if password is not None:
        password = clean_password(password)
    return _account(await _insert_user(email, name, password, locale, verified))


async def create_user(
    email: str, name: str, password: str | None, locale: str, *, verified: bool = False
) -> UserAccount:
    """Create an account; an email already used (in any letter case) is a `Conflict`."""
    async with global_transaction():
        return await insert_account(email, name, password, locale, verified=verified)


async def get_user(user_id: UUID) -> UserAccount | None:
    """The active account with this id, or None."""
    async with global_transaction():
        rows = await fetch(_USER_SQL + " WHERE u.id = $1 AND u.is_active", user_id)
    return _account(rows[0]) if rows else None


async def find_user_by_email(email: str) -> UserAccount | None:
    """The account of this email in any letter case (active or not), or None."""
    async with global_transaction():
        rows = await fetch(_USER_SQL + " WHERE lower(u.email) = lower($1)", email.strip())
    return _account(rows[0]) if rows else None


async def authenticate(
    email: str, password: str, ip: str, limiter: RateLimiter, settings: Settings
) -> UserAccount:
    """The account for these credentials, or `Unauthenticated`; throttled per account and IP.

    The message is the same for an unknown email and a wrong password.
    """
    account_key, ip_key = _sign_in_keys(email, ip)
    await _reserve_attempt(
        limiter,
        settings,
        account_key,
        ip_key,
        "Too many failed sign-in attempts. Wait {minutes} minutes or reset your password.",
    )
    async with global_transaction():
        rows = await fetch(
            _USER_SQL + " WHERE lower(u.email) = lower($1) AND u.is_active", email.strip()
        )
    row = rows[0] if rows else None
    # Hashing happens outside any transaction: no connection waits on argon2.
    failed = not await verify_password(row["password_hash"] if row else None, password)
    if not failed and row is not None:
        rehashed = await hash_password(password) if needs_rehash(row["password_hash"]) else None
        async with global_transaction():
            await execute(
                """UPDATE user_account SET last_login_at = now(),
                          password_hash = coalesce($2, password_hash) WHERE id = $1""",
                row["id"],
                rehashed,
            )
    if failed or row is None:
        raise Unauthenticated("Incorrect email or password.")  # the reserved attempt counts
    await limiter.reset(account_key)  # the account's failures are forgotten
    await _give_back(limiter, settings, ip_key)  # the address's earlier failures stand
    return _account(row)


async def _reserve_attempt(
    limiter: RateLimiter, settings: Settings, account_key: str, ip_key: str, message: str
) -> None:
    """Count a password attempt on the account and the address before checking it, and refuse
    (`TooManyRequests`, nothing counted) past either limit. Counted first, not checked then
    counted after argon2: requests sent at once would all pass a count read before any of
    them failed."""
    window = settings.login_window_seconds
    on_account = await limiter.hit(account_key, window)
    on_ip = await limiter.hit(ip_key, window)
    if on_account > settings.login_attempts_per_account or on_ip > settings.login_attempts_per_ip:
        await limiter.hit(account_key, window, -1)
        await limiter.hit(ip_key, window, -1)
        raise TooManyRequests(message, minutes=window // 60)


async def _give_back(limiter: RateLimiter, settings: Settings, *keys: str) -> None:
    """The attempt `_reserve_attempt` counted was not a failure: give it back."""
    for key in keys:
        await limiter.hit(key, settings.login_window_seconds, -1)


async def _issue_token(user_id: UUID, purpose: str, ttl: timedelta) -> str:
    token = new_token()
    await execute(
        """INSERT INTO user_token (id, user_id, purpose, token_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5)""",
        uuid4(),
        user_id,
        purpose,
        token_digest(token),
        datetime.now(UTC) + ttl,
    )
    return token


async def _consume_token(token: str, purpose: str) -> UUID:
    """Mark a valid token used and return its user; expired or reused ones are `Gone`."""
    rows = await fetch(
        """UPDATE user_token SET used_at = now()
           WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
           RETURNING user_id""",
        token_digest(token),
        purpose,
    )
    if not rows:
        raise Gone("This link has expired or has already been used. Ask for a new one.")
    user_id: UUID = rows[0]["user_id"]
    return user_id


async def _reserve_link_mail(limiter: RateLimiter, email: str, ip: str) -> None:
    """Count a link mail to `email` asked from `ip` before anything is looked up, and refuse
    (`TooManyRequests`, nothing counted) past `LINK_MAILS_PER_CLIENT` for the pair or
    `LINK_MAILS_PER_ADDRESS` for the address from anywhere: the same answer whether or not the
    address has an account. Per pair first, so that someone asking for links to your address
    from elsewhere does not stop yours before the far higher cap; counted before the check,
    so that requests sent at once cannot all pass a count read before any of them. The
    counters name the address by a digest (no address in Redis)."""
    address = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    keys = (f"link-mail:{ip}:{address}", f"link-mail:{address}")
    on_pair = await limiter.hit(keys[0], LINK_MAIL_WINDOW_SECONDS)
    on_address = await limiter.hit(keys[1], LINK_MAIL_WINDOW_SECONDS)
    if on_pair > LINK_MAILS_PER_CLIENT or on_address > LINK_MAILS_PER_ADDRESS:
        for key in keys:
            await limiter.hit(key, LINK_MAIL_WINDOW_SECONDS, -1)
        raise TooManyRequests(
            "Several links were sent to this address already. Wait up to {minutes} minutes, "
            "and look in your spam folder.",
            minutes=LINK_MAIL_WINDOW_SECONDS // 60,
        )


async def request_password_reset(
    email: str, settings: Settings, *, limiter: RateLimiter, ip: str
) -> None:
    """Mail a reset link when the account exists; the caller answers alike either way.
    `TooManyRequests` past the links an address may be mailed (`_reserve_link_mail`)."""
    await _reserve_link_mail(limiter, email, ip)
    async with global_transaction():
        rows = await fetch(
            _USER_SQL + " WHERE lower(u.email) = lower($1) AND u.is_active", email.strip()
        )
        if not rows:
            return
        user = _account(rows[0])
        token = await _issue_token(user.id, "password_reset", RESET_TTL)
        link = f"{settings.base_url}/password/reset/{token}"
        await queue_mail(
            user.email,
            translate(user.locale, "Reset your Jalon password"),
            translate(
                user.locale,
                "Hello {name},\n\nTo choose a new password, open this link within an hour:\n"
                "{link}\n\nIf you did not ask for it, ignore this message.",
                name=user.name,
                link=link,
            ),
        )


async def reset_password(token: str, password: str) -> UserAccount:
    """Set a new password with a reset token; every other reset link stops working, and
    every session of the person ends (whoever knew the old password is signed out)."""
    password = clean_password(password)
    password_hash = await hash_password(password)
    async with global_transaction():
        user_id = await _consume_token(token, "password_reset")
        await execute(
            """UPDATE user_account SET password_hash = $2, email_verified = true,
                      sessions_valid_after = $3 WHERE id = $1""",
            user_id,
            password_hash,
            datetime.now(UTC),
        )
        await execute(
            "UPDATE user_token SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
            user_id,
        )
        rows = await fetch(_USER_SQL + " WHERE u.id = $1", user_id)
    return _account(rows[0])


def _link(settings: Settings, path: str, next_path: str) -> str:
    return f"{settings.base_url}{path}?next={quote(next_path, safe='/')}"


async def _sign_in_link(
    user: UserAccount, settings: Settings, next_path: str, ttl: timedelta
) -> str:
    """A one-time sign-in link for `user`, inside the caller's transaction."""
    token = await _issue_token(user.id, "magic_link", ttl)
    return _link(settings, f"/login/link/{token}", next_path)


async def request_magic_link(
    email: str, settings: Settings, next_path: str = "/", *, limiter: RateLimiter, ip: str
) -> None:
    """Mail a one-time sign-in link when the account exists (`TooManyRequests` as
    `request_password_reset`)."""
    await _reserve_link_mail(limiter, email, ip)
    async with global_transaction():
        rows = await fetch(
            _USER_SQL + " WHERE lower(u.email) = lower($1) AND u.is_active", email.strip()
        )
        if not rows:
            return
        user = _account(rows[0])
        await queue_mail(
            user.email,
            translate(user.locale, "Your Jalon sign-in link"),
            translate(
                user.locale,
                "Hello {name},\n\nOpen this link within 15 minutes to sign in:\n{link}\n\n"
                "If you did not ask for it, ignore this message.",
                name=user.name,
                link=await _sign_in_link(user, settings, next_path, MAGIC_LINK_TTL),
            ),
        )


async def request_signup_link(
    new: NewAccount, settings: Settings, next_path: str, *, limiter: RateLimiter, ip: str
) -> None:
    """Sign up by link: mail `new.email` a link that creates the account `new` describes (no
    password) when it is followed; nothing is created before, so an address typed by someone
    else gets a mail to ignore, not an account. An address that has an account gets a
    one-time sign-in link instead, saying so. The caller answers alike either way
    (`TooManyRequests` as `request_password_reset`). The mail does not repeat the name typed:
    anyone may type anything there, sent to any address. Expired requests are purged here."""
    await _reserve_link_mail(limiter, new.email, ip)
    async with global_transaction():
        await execute("DELETE FROM signup_request WHERE expires_at <= now()")
        rows = await fetch(_USER_SQL + " WHERE lower(u.email) = lower($1)", new.email)
        if rows:
            if not rows[0]["is_active"]:
                return  # a disabled account gets no link, as on the sign-in form
            user = _account(rows[0])
            await queue_mail(
                user.email,
                translate(user.locale, "Your Jalon sign-in link"),
                translate(
                    user.locale,
                    "Hello {name},\n\nSomeone, probably you, asked to create a Jalon account "
                    "with this address, which has one already. Open this link within an hour "
                    "to sign in:\n{link}\n\nIf you did not ask for it, ignore this message.",
                    name=user.name,
                    link=await _sign_in_link(user, settings, next_path, SIGNUP_LINK_TTL),
                ),
            )
            return
        token = new_token()
        await execute(
            """INSERT INTO signup_request (id, token_hash, email, name, locale, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            uuid4(),
            token_digest(token),
            new.email,
            new.name,
            new.locale,
            datetime.now(UTC) + SIGNUP_LINK_TTL,
        )
        await queue_mail(
            new.email,
            translate(new.locale, "Finish creating your Jalon account"),
            translate(
                new.locale,
                "Hello,\n\nTo finish creating your Jalon account, open this link within an "
                "hour and press the button:\n{link}\n\nYou will sign in with links like this "
                "one, sent to this address; you can choose a password later.\n\nIf you did "
                "not ask for it, ignore this message: no account is created.",
                link=_link(settings, f"/signup/link/{token}", next_path),
            ),
        )


@dataclass(frozen=True)
class LinkSignIn:
    """Who a mailed link (sign-in or sign-up) signed in, and what it changed."""

    account: UserAccount
    #: the link created the account (a sign-up link for an address without one)
    created: bool = False
    #: the account had a password chosen before its address was proved: it no longer works
    password_dropped: bool = False


async def _signed_in_by_link(user_id: UUID) -> LinkSignIn:
    """Sign in the account whose address a link just proved, inside the caller's
    transaction: its address is verified from now on. A password chosen before the address
    was ever proved is dropped and the sessions signed in with it end: anyone may sign up
    with someone else's address and a password of their own, and must not keep the account
    once its owner takes it up (a pre-hijack). `Unauthenticated` for a disabled account."""
    dropped = await execute(
        """UPDATE user_account SET password_hash = NULL, sessions_valid_after = $2
           WHERE id = $1 AND NOT email_verified AND password_hash IS NOT NULL""",
        user_id,
        datetime.now(UTC),
    )
    await execute(
        "UPDATE user_account SET email_verified = true, last_login_at = now() WHERE id = $1",
        user_id,
    )
    rows = await fetch(_USER_SQL + " WHERE u.id = $1 AND u.is_active", user_id)
    if not rows:
        raise Unauthenticated("This account is disabled.")
    return LinkSignIn(_account(rows[0]), password_dropped=dropped == "UPDATE 1")


async def complete_signup(token: str) -> LinkSignIn:
    """Create the account a sign-up link describes, its address verified (the link proves
    it), and sign it in: the link works once, within the hour (`Gone` otherwise), and voids
    the address's other sign-up links. When the address got an account meanwhile (another
    link, a sign-up with a password), the link signs that account in as a sign-in link would
    (`_signed_in_by_link`) and changes nothing else of it."""
    digest = token_digest(token)
    async with global_transaction():
        found = await fetch("SELECT email FROM signup_request WHERE token_hash = $1", digest)
        if found:
            # The address's links one at a time: two followed at once would each wait for
            # the row the other deleted.
            await execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(lower($1), 0))", found[0]["email"]
            )
        rows = await fetch(
            """DELETE FROM signup_request WHERE token_hash = $1 AND expires_at > now()
               RETURNING email, name, locale""",
            digest,
        )
        if not rows:
            raise Gone("This link has expired or has already been used. Ask for a new one.")
        email, name, locale = rows[0]["email"], rows[0]["name"], rows[0]["locale"]
        await execute("DELETE FROM signup_request WHERE lower(email) = lower($1)", email)
        existing = await fetch("SELECT id FROM user_account WHERE lower(email) = lower($1)", email)
        if existing:
            return await _signed_in_by_link(existing[0]["id"])
        account = await insert_account(email, name, None, locale, verified=True)
        await execute("UPDATE user_account SET last_login_at = now() WHERE id = $1", account.id)
    return LinkSignIn(account, created=True)


async def consume_magic_link(token: str) -> LinkSignIn:
    """Sign in the account of a magic link (the link then stops working), as
    `_signed_in_by_link` says."""
    async with global_transaction():
        return await _signed_in_by_link(await _consume_token(token, "magic_link"))


async def _send_email_verification(user: UserAccount, settings: Settings) -> None:
    """Issue a verification token bound to the account's current address and mail its link,
    inside the caller's transaction."""
    token = new_token()
    await execute(
        """INSERT INTO user_token (id, user_id, purpose, token_hash, expires_at, email)
           VALUES ($1, $2, 'email_verification', $3, $4, $5)""",
        uuid4(),
        user.id,
        token_digest(token),
        datetime.now(UTC) + EMAIL_VERIFICATION_TTL,
        user.email,
    )
    await queue_mail(
        user.email,
        translate(user.locale, "Confirm your email address for Jalon"),
        translate(
            user.locale,
            "Hello {name},\n\nTo confirm that this address is yours, open this link within 48 "
            "hours and press the button:\n{link}\n\nOnce it is confirmed, you can share your "
            "results with the organizations whose tests you take.\n\nIf you did not create a "
            "Jalon account, ignore this message.",
            name=user.name,
            link=f"{settings.base_url}/email/verify/{token}",
        ),
    )


async def request_email_verification(user: UserAccount, settings: Settings) -> None:
    """Mail a person who signed up with a password a link that verifies their address
    (single-use, 48 hours); nothing for an address already verified (a magic link, a
    password reset, SSO or an invitation proved it)."""
    if user.email_verified:
        return
    async with global_transaction(user_id=user.id):
        await _send_email_verification(user, settings)


async def resend_email_verification(
    user: UserAccount, limiter: RateLimiter, settings: Settings
) -> None:
    """The verification mail again, at a signed-in person's request: `TooManyRequests` past
    `VERIFICATION_MAILS_PER_WINDOW` an hour; `Conflict` when the address is verified."""
    if user.email_verified:
        raise Conflict("Your email address is already verified.")
    key = f"verify:acct:{user.id}"
    if await limiter.count(key) >= VERIFICATION_MAILS_PER_WINDOW:
        raise TooManyRequests(
            "The verification mail was sent several times already. Wait {minutes} minutes, "
            "and look in your spam folder.",
            minutes=VERIFICATION_WINDOW_SECONDS // 60,
        )
    await limiter.hit(key, VERIFICATION_WINDOW_SECONDS)
    async with global_transaction(user_id=user.id):
        await _send_email_verification(user, settings)


async def verify_email(token: str) -> UserAccount:
    """Verify the address a verification token was sent to, and return its account: the
    token works once, within 48 hours, and only while the account still has that address
    (`Gone` otherwise). It verifies the token's own account, whoever opens it, and signs no
    one in."""
    async with global_transaction():
        rows = await fetch(
            """UPDATE user_token t SET used_at = now()
               FROM user_account u
               WHERE t.token_hash = $1 AND t.purpose = 'email_verification'
                 AND t.used_at IS NULL AND t.expires_at > now()
                 AND u.id = t.user_id AND lower(u.email) = lower(t.email) AND u.is_active
               RETURNING t.user_id""",
            token_digest(token),
        )
        if not rows:
            raise Gone("This link has expired or has already been used. Ask for a new one.")
        user_id = rows[0]["user_id"]
        await execute("UPDATE user_account SET email_verified = true WHERE id = $1", user_id)
        # Its other verification links have nothing left to do.
        await execute(
            """UPDATE user_token SET used_at = now()
               WHERE user_id = $1 AND purpose = 'email_verification' AND used_at IS NULL""",
            user_id,
        )
        found = await fetch(_USER_SQL + " WHERE u.id = $1", user_id)
    return _account(found[0])


def _sign_in_keys(email: str, ip: str) -> tuple[str, str]:
    """The limiter's counters of failed attempts at a person's password: per account (by
    email) and per address, shared by sign-in and password change."""
    return "login:acct:" + email.strip().lower(), "login:ip:" + ip


async def change_password(
    user: UserAccount,
    current: str | None,
    new: str | None,
    confirmation: str | None,
    ip: str,
    limiter: RateLimiter,
    settings: Settings,
    *,
    record: Callable[[UserAccount], Awaitable[object]],
) -> UserAccount:
    """Change a signed-in person's password, knowing the current one.

    Refused with every error at once (`InvalidFields`): a wrong current password, a new one
    too short or too long (the sign-up rules), a confirmation that differs. A wrong current
    password counts as a failed sign-in for the account and the address (the same limiter
    and limits), and past them `TooManyRequests` refuses before any check. On success every
    session of the person that signed in before now is over (`sessions_valid_after`, ADR
    0027); the caller renews its own session past it. The person is told by mail.

    `record` writes the change into audit logs (`tenants.account_events`): it is called last
    in the transaction that changes the password, with the changed account, so the password
    and its audit events commit together or not at all."""
    account_key, ip_key = _sign_in_keys(user.email, ip)
    await _reserve_attempt(
        limiter,
        settings,
        account_key,
        ip_key,
        "Too many failed attempts. Wait {minutes} minutes or reset your password.",
    )
    async with global_transaction(user_id=user.id):
        rows = await fetch("SELECT password_hash FROM user_account WHERE id = $1", user.id)
    stored = rows[0]["password_hash"] if rows else None
    errors: list[Invalid] = []
    wrong = False
    # Hashing happens outside any transaction: no connection waits on argon2.
    if stored is None:
        errors.append(
            Invalid(
                "Your account has no password yet: choose one with the “Forgot your "
                "password?” link.",
                field="current_password",
            )
        )
    elif not current:
        errors.append(Invalid("Type your current password.", field="current_password"))
    elif not await verify_password(stored, current):
        errors.append(Invalid("The current password is incorrect.", field="current_password"))
        wrong = True
    if not wrong:  # nothing was guessed wrong: the reserved attempt is given back
        await _give_back(limiter, settings, account_key, ip_key)
    try:
        clean_new_password(new, confirmation)
    except InvalidFields as several:
        errors.extend(several.errors)
    except Invalid as error:
        errors.append(error)
    if not errors and new == current:
        errors.append(Invalid("Choose a password other than the current one.", field="password"))
    raise_all(errors)
    password_hash = await hash_password(new or "")
    now = datetime.now(UTC)
    async with global_transaction(user_id=user.id):
        await execute(
            "UPDATE user_account SET password_hash = $2, sessions_valid_after = $3 WHERE id = $1",
            user.id,
            password_hash,
            now,
        )
        # A reset link asked for earlier would set the password again: it stops working.
        await execute(
            "UPDATE user_token SET used_at = now() WHERE user_id = $1 AND used_at IS NULL "
            "AND purpose = 'password_reset'",
            user.id,
        )
        await queue_mail(
            user.email,
            translate(user.locale, "Your Jalon password was changed"),
            translate(
                user.locale,
                "Hello {name},\n\nThe password of your Jalon account was changed, and your "
                "other sessions were signed out.\n\nIf you did not do it, choose a new "
                "password at once:\n{link}",
                name=user.name,
                link=f"{settings.base_url}/password/forgot",
            ),
        )
        rows = await fetch(_USER_SQL + " WHERE u.id = $1", user.id)
        changed = _account(rows[0])
        # Last in the transaction: it switches the transaction's tenant to each of the
        # person's organizations in turn, and leaves it on the last one.
        await record(changed)
    await limiter.reset(account_key)
    return changed


async def update_profile(user: UserAccount, name: str, locale: str) -> UserAccount:
    """Change the person's own name and language."""
    name = clean_text(name, "name", max_length=200)
    locale = clean_locale(locale)
    async with global_transaction():
        await execute(
            "UPDATE user_account SET name = $2, locale = $3 WHERE id = $1", user.id, name, locale
        )
        rows = await fetch(_USER_SQL + " WHERE u.id = $1", user.id)
    return _account(rows[0])
