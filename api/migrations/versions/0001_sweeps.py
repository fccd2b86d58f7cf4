"""The sweeps table.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255), unique=True),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("total_trials", sa.Integer),
        sa.Column("max_epochs", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("progress", sa.JSON),
        sa.Column("best", sa.JSON),
        sa.Column("best_per_algorithm", sa.JSON),
        sa.Column("trials", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("experiment_id", sa.String(64)),
        sa.Column("parent_run_id", sa.String(64)),
        sa.Column("driver_pid", sa.Integer),
        sa.Column("driver_host", sa.String(255)),
        sa.Column("driver_heartbeat_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_sweeps_status_seq", "sweeps", ["status", "seq"])


def downgrade() -> None:
    op.drop_index("ix_sweeps_status_seq", table_name="sweeps")
    op.drop_table("sweeps")
