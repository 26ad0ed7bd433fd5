"""Settings, read once from the environment.

Every variable is listed with a comment in `.env.example`. Nothing else in Jalon reads
`os.environ` for configuration.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: The values of `JALON_ENV`; unset means production.
ENVIRONMENTS = ("production", "development")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return default if value is None else int(value)


@dataclass(frozen=True)
class Settings:
    """Typed view of Jalon's configuration."""

    #: `production` (the default) or `development`, which must be asked for
    #: (`JALON_ENV=development`, as `make demo` and the test suite do): production refuses
    #: unsafe defaults, development turns on the conveniences that are unsafe on a network.
    environment: str = "production"
    #: Where the embedded PostgreSQL, the generated secret and exports live.
    data_dir: Path = field(default_factory=lambda: Path("var").resolve())
    #: Owner connection (runs migrations). Unset: start the embedded PostgreSQL.
    database_url: str | None = None
    #: Runtime connection (owns nothing, no BYPASSRLS). Unset: the owner URL with the
    #: runtime role's name and password swapped in.
    runtime_database_url: str | None = None
    #: Login role the application connects as.
    runtime_role: str = "jalon_app"
    runtime_password: str | None = None
    #: Redis for jobs, sessions and throttling. Unset: in-process jobs, in-memory stores.
    redis_url: str | None = None
    #: Signs CSRF tokens (sessions are random identifiers kept server-side).
    secret_key: str = ""
    #: Public URL, used in links sent by mail; https here turns on secure cookies.
    base_url: str = "http://127.0.0.1:8000"
    #: `smtp://user:password@host:port` (or `smtps://`); unset (development only): mail is
    #: kept unsent in the database, for the development outbox.
    smtp_url: str | None = None
    mail_from: str = "Jalon <no-reply@jalon.localhost>"
    #: Days a mail message's record (recipient, subject, status; its body is redacted once
    #: sent) is kept before the hourly purge deletes it.
    mail_retention_days: int = 30
    default_locale: str = "fr"
    #: Database connections per process.
    db_pool_size: int = 10
    #: Threads per process that hash and verify passwords (argon2id, 64 MiB each): sign-ins
    #: beyond them wait their turn, so a storm of them leaves the other cores to pages.
    password_hash_threads: int = 1
    #: Login throttling: failed attempts allowed per window, per account and per IP.
    login_attempts_per_account: int = 5
    login_attempts_per_ip: int = 20
    login_window_seconds: int = 900
    #: Invitation and reminder mails to learners an organization may send a day (UTC), and
    #: while in trial: Jalon's sender mails addresses the organization typed, so a cap keeps
    #: a self-signed-up trial from mailing thousands of strangers.
    invitation_mails_per_day: int = 2000
    invitation_mails_per_day_trial: int = 200
    session_max_age_seconds: int = 14 * 24 * 3600
    #: Proxies whose X-Forwarded-For/-Proto are believed (comma-separated IPs or networks,
    #: `*` for any): the client address used for throttling and the audit log comes from them.
    forwarded_allow_ips: str = "127.0.0.1"
    #: A challenge reported by this many distinct participants within the window is withdrawn
    #: from selection until a content editor reviews it (ADR 0013).
    report_threshold: int = 3
    report_window_days: int = 30
    #: Days a background task's file (an export) can be downloaded before it is deleted.
    task_file_days: int = 7
    #: Campaigns with more shared results than this export as a background task.
    export_background_threshold: int = 5000
    #: Outgoing webhooks may target private, loopback and link-local addresses. Always true
    #: outside production; in production only when set (an intranet receiver, say).
    webhooks_allow_private_networks: bool = False
    #: Stripe's secret API key (`sk_live_…`/`sk_test_…`). Unset: no Stripe gateway; every
    #: subscription is on the manual (bank transfer) gateway.
    stripe_secret_key: str | None = None
    #: Signing secret of the Stripe webhook endpoint (`whsec_…`); unset: inbound Stripe
    #: webhooks are refused (400), none is trusted unsigned.
    stripe_webhook_secret: str | None = None
    #: Base URL of Stripe's API; tests point it at their local Stripe-compatible server.
    stripe_api_base: str = "https://api.stripe.com"
    #: Keys that encrypt SSO secrets at rest (AES-256-GCM, base64 of 32 bytes each): the first
    #: encrypts, every one decrypts (rotation: put the new key first, run
    #: `jalon sso rotate-keys`, then drop the old). Generated into the data directory outside
    #: production; empty in production unless set, and then no SSO secret can be stored.
    sso_keys: tuple[str, ...] = ()
    #: The nameserver ("host:port", or "host" for port 53) that verifies SSO email domains'
    #: TXT records; empty: the system's resolvers.
    dns_resolver: str = ""
    #: The demo's development OpenID provider at /dev/idp (`api.dev_idp`): only when asked
    #: for, never in production, on a loopback base URL.
    dev_idp: bool = False

    #: The selling entity on invoices. `billing_issuer` names its gapless numbering series
    #: (numbers are `<issuer>-<year>-<000001>`); the rest is printed on every invoice, and
    #: the country sets the VAT (its standard rate, `billing.profiles.EU_VAT_RATES`).
    billing_issuer: str = "JALON"
    billing_seller_name: str = "Jalon"
    billing_seller_address: str = ""
    billing_seller_postal_code: str = ""
    billing_seller_city: str = ""
    billing_seller_country: str = "FR"
    billing_seller_vat_number: str = ""
    billing_seller_siret: str = ""
    billing_seller_email: str = ""
    #: Where bank transfers are paid (printed on invoices paid by transfer).
    billing_seller_iban: str = ""
    billing_seller_bic: str = ""

    #: The back office: a staff session idle this long asks for the second factor again;
    #: a read-only impersonation of a tenant ends after this long.
    staff_idle_minutes: int = 15
    impersonation_minutes: int = 30

    #: Bearer token a Prometheus scrape of `/metrics` must carry; unset: only loopback
    #: clients may read the metrics (docs/operations.md).
    metrics_token: str | None = None
    #: Log lines: `json` (one object a line, the default in production) or `text`.
    log_format: str = "json"
    #: The operator's own terms of use (an https:// address): linked from the sign-up forms'
    #: terms checkbox instead of Jalon's plain page at /terms. Unset: /terms.
    terms_url: str | None = None

    def campaign_link(self, code: str) -> str:
        """The address of a campaign's page for its participants, as mails and the console
        give it: on `base_url`, never on the Host header a request came with."""
        return f"{self.base_url}/c/{code}"

    @property
    def embedded_database(self) -> bool:
        """True when Jalon runs its own PostgreSQL in `data_dir`."""
        return self.database_url is None

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def development(self) -> bool:
        """Development mode, asked for with `JALON_ENV=development` (never the default)."""
        return self.environment == "development"

    @property
    def dev_outbox(self) -> bool:
        """The development outbox page exists only in development mode, when no SMTP server
        is configured (and answers loopback clients only, `api.routes.public.dev_outbox`)."""
        return self.smtp_url is None and self.development


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise RuntimeError(f"{name} must be true or false, not {value!r}")


def _secret_key(data_dir: Path) -> str:
    configured = _env("JALON_SECRET_KEY")
    if configured:
        return configured
    # Development only: a random key kept in the data directory so sessions survive restarts.
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _sso_keys(environment: str, data_dir: Path) -> tuple[str, ...]:
    configured = _env("JALON_SSO_KEYS")
    if configured:
        return tuple(key.strip() for key in configured.split(",") if key.strip())
    if environment == "production":
        # Never a generated key in production: a key lost with a container's disk would
        # lose every connection's secret with it.
        return ()
    path = data_dir / "sso_keys"
    if path.exists():
        return tuple(key for key in path.read_text().split() if key)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    path.write_text(key + "\n")
    path.chmod(0o600)
    return (key,)


def _dev_idp(environment: str) -> bool:
    asked = _env_bool("JALON_DEV_IDP", False)
    if asked and environment == "production":
        raise RuntimeError("JALON_DEV_IDP=true is refused in production: it signs anyone in")
    return asked


def _log_format(environment: str) -> str:
    default = "json" if environment == "production" else "text"
    value = (_env("JALON_LOG_FORMAT") or default).lower()
    if value not in ("json", "text"):
        raise RuntimeError(f"JALON_LOG_FORMAT must be json or text, not {value!r}")
    return value


def _terms_url() -> str | None:
    value = _env("JALON_TERMS_URL")
    if value is not None and not value.startswith(("https://", "http://", "/")):
        # linked from every sign-up form: never a javascript: or data: address
        raise RuntimeError(f"JALON_TERMS_URL must be an http(s):// URL or a path, not {value!r}")
    return value


def load_settings() -> Settings:
    """Read the environment into a `Settings`; production without a secret key is refused."""
    environment = _env("JALON_ENV", "production") or "production"
    if environment not in ENVIRONMENTS:
        # A typo ("prod", "dev") must not pick a mode: refuse rather than guess.
        raise RuntimeError(f"JALON_ENV must be production or development, not {environment!r}")
    data_dir = Path(_env("JALON_DATA_DIR", "var") or "var").resolve()
    if environment == "production":
        # Production refuses to start on a development default rather than misbehave later.
        missing = [
            name
            for name in ("JALON_SECRET_KEY", "DATABASE_URL", "JALON_SMTP_URL")
            if not _env(name)
        ]
        if missing:
            raise RuntimeError(
                "JALON_ENV=production needs " + ", ".join(missing) + " (see .env.example): "
                "no embedded database, no mail silently dropped, no generated secret; "
                "JALON_ENV=development runs a local development server without them"
            )
        stripe_base = _env("JALON_STRIPE_API_BASE")
        if stripe_base and not stripe_base.startswith("https://"):
            # the secret key goes with every call: never in clear, never to a test server
            raise RuntimeError("JALON_STRIPE_API_BASE must be an https:// URL in production")
    return Settings(
        environment=environment,
        data_dir=data_dir,
        database_url=_env("DATABASE_URL"),
        runtime_database_url=_env("JALON_RUNTIME_DATABASE_URL"),
        runtime_role=_env("JALON_DB_RUNTIME_ROLE", "jalon_app") or "jalon_app",
        runtime_password=_env("JALON_DB_RUNTIME_PASSWORD"),
        redis_url=_env("REDIS_URL"),
        secret_key=_secret_key(data_dir),
        base_url=(_env("JALON_BASE_URL", "http://127.0.0.1:8000") or "").rstrip("/"),
        smtp_url=_env("JALON_SMTP_URL"),
        mail_from=_env("JALON_MAIL_FROM", Settings.mail_from) or Settings.mail_from,
        mail_retention_days=max(1, _env_int("JALON_MAIL_RETENTION_DAYS", 30)),
        default_locale=_env("JALON_DEFAULT_LOCALE", "fr") or "fr",
        db_pool_size=_env_int("JALON_DB_POOL_SIZE", 10),
        password_hash_threads=max(1, _env_int("JALON_PASSWORD_HASH_THREADS", 1)),
        login_attempts_per_account=_env_int("JALON_LOGIN_ATTEMPTS_PER_ACCOUNT", 5),
        login_attempts_per_ip=_env_int("JALON_LOGIN_ATTEMPTS_PER_IP", 20),
        login_window_seconds=_env_int("JALON_LOGIN_WINDOW_SECONDS", 900),
        invitation_mails_per_day=max(0, _env_int("JALON_INVITATION_MAILS_PER_DAY", 2000)),
        invitation_mails_per_day_trial=max(
            0, _env_int("JALON_INVITATION_MAILS_PER_DAY_TRIAL", 200)
        ),
        session_max_age_seconds=_env_int("JALON_SESSION_MAX_AGE_SECONDS", 14 * 24 * 3600),
        forwarded_allow_ips=_env("JALON_FORWARDED_ALLOW_IPS", "127.0.0.1") or "127.0.0.1",
        report_threshold=_env_int("JALON_REPORT_THRESHOLD", 3),
        report_window_days=_env_int("JALON_REPORT_WINDOW_DAYS", 30),
        task_file_days=_env_int("JALON_TASK_FILE_DAYS", 7),
        export_background_threshold=_env_int("JALON_EXPORT_BACKGROUND_THRESHOLD", 5000),
        staff_idle_minutes=_env_int("JALON_STAFF_IDLE_MINUTES", 15),
        impersonation_minutes=_env_int("JALON_IMPERSONATION_MINUTES", 30),
        metrics_token=_env("JALON_METRICS_TOKEN"),
        log_format=_log_format(environment),
        terms_url=_terms_url(),
        stripe_secret_key=_env("JALON_STRIPE_SECRET_KEY"),
        stripe_webhook_secret=_env("JALON_STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=(
            _env("JALON_STRIPE_API_BASE", Settings.stripe_api_base) or Settings.stripe_api_base
        ).rstrip("/"),
        sso_keys=_sso_keys(environment, data_dir),
        dns_resolver=_env("JALON_DNS_RESOLVER", "") or "",
        dev_idp=_dev_idp(environment),
        billing_issuer=_env("JALON_BILLING_ISSUER", "JALON") or "JALON",
        billing_seller_name=_env("JALON_BILLING_SELLER_NAME", "Jalon") or "Jalon",
        billing_seller_address=_env("JALON_BILLING_SELLER_ADDRESS", "") or "",
        billing_seller_postal_code=_env("JALON_BILLING_SELLER_POSTAL_CODE", "") or "",
        billing_seller_city=_env("JALON_BILLING_SELLER_CITY", "") or "",
        billing_seller_country=_env("JALON_BILLING_SELLER_COUNTRY", "FR") or "FR",
        billing_seller_vat_number=_env("JALON_BILLING_SELLER_VAT_NUMBER", "") or "",
        billing_seller_siret=_env("JALON_BILLING_SELLER_SIRET", "") or "",
        billing_seller_email=_env("JALON_BILLING_SELLER_EMAIL", "") or "",
        billing_seller_iban=_env("JALON_BILLING_SELLER_IBAN", "") or "",
        billing_seller_bic=_env("JALON_BILLING_SELLER_BIC", "") or "",
        webhooks_allow_private_networks=(
            environment != "production" or _env_bool("JALON_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False)
        ),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
