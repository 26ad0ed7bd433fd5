"""Piccolo app for the campaigns package (its tables and migrations)."""

import os

from piccolo.conf.apps import AppConfig

from campaigns.tables import (
    Answer,
    Assessment,
    BankExposure,
    Campaign,
    CampaignCode,
    ChallengeExposure,
    ChallengeFlag,
    ChallengeFlagEvent,
    ChallengeReport,
    Learner,
    Participation,
    Result,
    TargetProfile,
)

APP_CONFIG = AppConfig(
    app_name="campaigns",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        TargetProfile,
        Campaign,
        CampaignCode,
        Learner,
        Participation,
        Assessment,
        Answer,
        Result,
        ChallengeReport,
        ChallengeFlag,
        ChallengeFlagEvent,
        BankExposure,
        ChallengeExposure,
    ],
    migration_dependencies=["tenants.piccolo_app", "sso.piccolo_app", "billing.piccolo_app"],
)
