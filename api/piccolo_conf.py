"""Piccolo's configuration, for its migration runner (`PICCOLO_CONF=api.piccolo_conf`)."""

from piccolo.conf.apps import AppRegistry

from core.database import DB

APP_REGISTRY = AppRegistry(
    apps=[
        "core.piccolo_app",
        "tenants.piccolo_app",
        "sso.piccolo_app",
        "billing.piccolo_app",
        "campaigns.piccolo_app",
    ]
)

__all__ = ["APP_REGISTRY", "DB"]
