"""Piccolo app for the tenants package (its tables and migrations). One of its migrations also
creates core's `task` and `task_file`, whose classes `core.piccolo_app` lists."""

import os

from piccolo.conf.apps import AppConfig

from tenants.tables import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    SignupRequest,
    StaffMember,
    User,
    UserToken,
    WebhookDelivery,
    WebhookEndpoint,
)

APP_CONFIG = AppConfig(
    app_name="tenants",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        Organization,
        User,
        UserToken,
        SignupRequest,
        StaffMember,
        Membership,
        Invitation,
        AuditEvent,
        ApiToken,
        WebhookEndpoint,
        WebhookDelivery,
    ],
)
