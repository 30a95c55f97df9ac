"""Schema version 3: the number format each job's model ran in."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("precision", sa.String(16)))
    op.execute("INSERT INTO schema_version (version, applied_at) VALUES (3, CURRENT_TIMESTAMP)")
