"""Plans, subscriptions, the seat ledger, invoices, payment gateways and webhooks.

Not built yet (issue: billing); the package exists so the layout, the packaging and the
dependency-direction test already cover it.
"""
