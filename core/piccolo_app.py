"""Piccolo app for core's own tables: the mail outbox, and the background tasks and their
files (created by a migration of the tenants app, whose tables they reference)."""

import os

from piccolo.conf.apps import AppConfig

from core.mail import MailMessage
from core.tables import Task, TaskFile

APP_CONFIG = AppConfig(
    app_name="core",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[MailMessage, Task, TaskFile],
)
