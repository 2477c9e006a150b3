"""Persistence: SQLAlchemy rows, sessions, migrations. Speaks domain types outward."""
