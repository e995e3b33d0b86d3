"""Dialect request models → Engine API requests: one conversion per dialect."""
