"""Settings: development defaults work with nothing set; production refuses them."""

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


def test_development_needs_nothing(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.embedded_database
    assert settings.dev_outbox
    assert settings.secret_key  # generated once and kept in the data directory
    assert load_settings().secret_key == settings.secret_key
    assert settings.forwarded_allow_ips == "127.0.0.1"
