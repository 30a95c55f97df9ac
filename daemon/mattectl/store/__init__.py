"""The job log: SQLAlchemy models, engine set-up and the repository that owns sessions."""
