"""Cross-cutting infrastructure: settings, database and tenant transactions, jobs, mail, i18n.

`core` imports nothing else of Jalon: domain packages build on it.
"""
