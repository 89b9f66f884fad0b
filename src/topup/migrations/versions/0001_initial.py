"""Initial schema.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    from topup.adapters.db.tables import metadata

    metadata.create_all(op.get_bind())


def downgrade() -> None:
    from topup.adapters.db.tables import metadata

    metadata.drop_all(op.get_bind())
