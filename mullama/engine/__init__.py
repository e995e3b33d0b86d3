"""Mullama's engine: no UI, transport or server imports here (a test checks it)."""
