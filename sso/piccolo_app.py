"""Piccolo app for the sso package (its tables and migrations)."""

import os

from piccolo.conf.apps import AppConfig

from sso.tables import (
    SamlAssertionSeen,
    SamlResponseReceived,
    SsoConnection,
    SsoDomain,
    SsoPolicy,
    VerifiedDomain,
)

APP_CONFIG = AppConfig(
    app_name="sso",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        SsoConnection,
        SsoDomain,
        VerifiedDomain,
        SsoPolicy,
        SamlAssertionSeen,
        SamlResponseReceived,
    ],
    migration_dependencies=["tenants.piccolo_app"],
)
