"""Locust scenarios and the `make load` runner."""
