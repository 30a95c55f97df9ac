"""The job log's Alembic migrations (run by :func:`mattectl.store.engine.migrate`)."""
