"""Piccolo app for core's own table (the mail outbox)."""

import os

from piccolo.conf.apps import AppConfig

from core.mail import MailMessage

APP_CONFIG = AppConfig(
    app_name="core",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[MailMessage],
)
