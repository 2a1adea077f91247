"""Exploration policies, logging and off-policy evaluation (issue 7)."""
