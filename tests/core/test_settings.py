"""Settings: production is the default and refuses development defaults; development mode is
asked for (`JALON_ENV=development`) and then needs nothing."""

from __future__ import annotations

import pytest

from core.settings import load_settings

PRODUCTION = {
    "JALON_ENV": "production",
    "JALON_SECRET_KEY": "k" * 64,
    "DATABASE_URL": "postgresql://owner@db/jalon",
    "JALON_SMTP_URL": "smtps://mailer:pw@smtp.example.org",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> pytest.MonkeyPatch:
    for name in (*PRODUCTION, "JALON_FORWARDED_ALLOW_IPS", "JALON_RUNTIME_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JALON_DATA_DIR", str(tmp_path))
    return monkeypatch


def test_production_starts_with_everything_it_needs(env: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        env.setenv(name, value)
    env.setenv("JALON_FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    settings = load_settings()
    assert settings.environment == "production"
    assert not settings.dev_outbox
    assert settings.forwarded_allow_ips == "10.0.0.0/8"


@pytest.mark.parametrize("missing", ["JALON_SECRET_KEY", "DATABASE_URL", "JALON_SMTP_URL"])
def test_production_refuses_a_development_default(env: pytest.MonkeyPatch, missing: str) -> None:
    for name, value in PRODUCTION.items():
        if name != missing:
            env.setenv(name, value)
    with pytest.raises(RuntimeError, match=missing):
        load_settings()


def test_nothing_set_is_production_and_refuses_to_start(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="JALON_SECRET_KEY, DATABASE_URL, JALON_SMTP_URL"):
        load_settings()
    for name, value in PRODUCTION.items():
        if name != "JALON_ENV":
            env.setenv(name, value)
    settings = load_settings()
    assert settings.environment == "production"
    assert not settings.development
    assert not settings.dev_outbox
    assert not settings.webhooks_allow_private_networks


@pytest.mark.parametrize("value", ["dev", "prod", "test", "Production"])
def test_an_unknown_environment_is_refused(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("JALON_ENV", value)
    with pytest.raises(RuntimeError, match="JALON_ENV must be production or development"):
        load_settings()


def test_development_needs_nothing(env: pytest.MonkeyPatch) -> None:
    env.setenv("JALON_ENV", "development")
    settings = load_settings()
    assert settings.development
    assert settings.embedded_database
    assert settings.dev_outbox
    assert settings.secret_key  # generated once and kept in the data directory
    assert load_settings().secret_key == settings.secret_key
    assert settings.forwarded_allow_ips == "127.0.0.1"


def test_development_with_smtp_has_no_outbox(env: pytest.MonkeyPatch) -> None:
    env.setenv("JALON_ENV", "development")
    env.setenv("JALON_SMTP_URL", "smtp://127.0.0.1:2525")
    assert not load_settings().dev_outbox
