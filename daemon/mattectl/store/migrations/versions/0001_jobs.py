"""Schema version 1: jobs and daemons, as mattectl made them before Alembic (see
tests/schema_v1.sql). A new database is made whole from the models and stamped with the newest
revision, so this revision only marks where the older databases begin."""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
