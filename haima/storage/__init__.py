"""Durable storage: SQLite is the source of truth."""
