"""The back office for account managers and content editors: its routes and templates.

Not built yet (issue: back office); staff accounts already exist (`jalon staff create`).
"""
