"""Checks a fetched file must pass before it is installed."""
