"""Piccolo tables of the billing package. The tables themselves are made by hand-written SQL
migrations (ADR 0002: composite keys, row-level security); these classes name them for
Piccolo's app registry."""
