"""Partial index for claims that leave route jobs for later (a worker at its dispatch cap).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_run_at_not_route",
        "jobs",
        ["run_at"],
        unique=False,
        postgresql_where=sa.text("kind <> 'route'"),
        sqlite_where=sa.text("kind <> 'route'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_run_at_not_route", table_name="jobs")
