"""Piccolo app for the sso package (its tables and migrations)."""

import os

from piccolo.conf.apps import AppConfig

from sso.tables import (
    DirectoryGroup,
    DirectoryGroupMapping,
    DirectoryGroupMember,
    DirectoryUser,
    SamlAssertionSeen,
    SamlResponseReceived,
    ScimToken,
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
        ScimToken,
        DirectoryUser,
        DirectoryGroup,
        DirectoryGroupMember,
        DirectoryGroupMapping,
    ],
    migration_dependencies=["tenants.piccolo_app"],
)
