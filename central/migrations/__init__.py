"""Alembic migrations of the central database (run by ``central.db.open_db``)."""
