"""The entry point: the Litestar application, its routes and templates, and the `jalon` CLI.

Nothing imports `api`; it assembles every other package.
"""
