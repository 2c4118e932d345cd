"""Persistence: SQLAlchemy models, engine/session setup, repositories, Alembic migrations."""
