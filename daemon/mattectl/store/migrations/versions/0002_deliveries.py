"""Schema version 2: the output's hash on each job, and the table of delivered photos, filled
from the done jobs still in the log (their rows would otherwise take that memory with them when
pruned)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("output_hash", sa.String(64)))
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("folder", sa.String(64), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("input_path", sa.Text, nullable=False),
        sa.Column("input_size", sa.BigInteger, nullable=False),
        sa.Column("input_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("output_path", sa.Text, nullable=False),
        sa.Column("output_hash", sa.String(64)),
        sa.Column("job_id", sa.Integer),
        sa.Column("delivered_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("folder", "input_hash", name="uq_deliveries_folder_hash"),
    )
    op.create_index("ix_deliveries_folder_path", "deliveries", ["folder", "input_path"])
    op.create_index("ix_deliveries_delivered", "deliveries", ["delivered_at"])
    op.execute(
        "INSERT INTO deliveries (folder, input_hash, input_path, input_size, input_mtime_ns, "
        "output_path, job_id, delivered_at) "
        "SELECT folder, input_hash, input_path, input_size, input_mtime_ns, output_path, id, "
        "finished_at FROM jobs WHERE status = 'done' AND output_path IS NOT NULL "
        "AND finished_at IS NOT NULL")
    op.execute("INSERT INTO schema_version (version, applied_at) VALUES (2, CURRENT_TIMESTAMP)")
