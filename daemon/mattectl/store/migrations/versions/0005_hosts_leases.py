"""Schema version 5 (the first made with Alembic): several workstations on one job log. A
running job's lease (``lease_until``, renewed by its daemon), and the hosts table (each
workstation's heartbeat, version, device and loaded models)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_until", sa.DateTime))
    op.create_index("ix_jobs_lease", "jobs", ["status", "lease_until"])
    op.create_table(
        "hosts",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("instance", sa.String(128), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("workers", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
    )
    # mattectl before Alembic reads schema_version only: this row makes it refuse the database
    # ("newer than this mattectl") instead of running on a schema it does not know.
    op.execute("INSERT INTO schema_version (version, applied_at) VALUES (5, CURRENT_TIMESTAMP)")
