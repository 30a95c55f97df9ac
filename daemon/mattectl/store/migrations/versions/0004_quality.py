"""Schema version 4: each job's confidence in its alpha (0..1) and the time its edges took."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("confidence", sa.Float))
    op.add_column("jobs", sa.Column("refine_ms", sa.Float))
    op.execute("INSERT INTO schema_version (version, applied_at) VALUES (4, CURRENT_TIMESTAMP)")
