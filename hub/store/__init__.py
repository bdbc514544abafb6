"""Durable state in SQL (sqlmodel/SQLAlchemy async): SQLite by default, PostgreSQL by URL."""
