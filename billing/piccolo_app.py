"""Piccolo app for the billing package (its tables and migrations)."""

import os

from piccolo.conf.apps import AppConfig

from billing.tables import (
    BillingProfile,
    DunningNotice,
    GatewayCustomer,
    GatewayEvent,
    Invoice,
    InvoiceLine,
    InvoiceNumber,
    Payment,
    PendingCharge,
    Plan,
    PlanPrice,
    SeatBalance,
    SeatPack,
    SeatUsage,
    Subscription,
)

APP_CONFIG = AppConfig(
    app_name="billing",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        Plan,
        PlanPrice,
        Subscription,
        BillingProfile,
        PendingCharge,
        InvoiceNumber,
        Invoice,
        InvoiceLine,
        Payment,
        DunningNotice,
        GatewayEvent,
        GatewayCustomer,
        SeatPack,
        SeatUsage,
        SeatBalance,
    ],
    migration_dependencies=["tenants.piccolo_app"],
)
