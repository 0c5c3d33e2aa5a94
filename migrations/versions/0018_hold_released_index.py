"""The sweeper's holds still to give back found by an index: of the many cancelled and
expired charges, the few whose release was never confirmed (ix_charges_status_hold_released_at)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 02:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_charges_status_hold_released_at', 'charges',
                    ['status', 'hold_released_at'])


def downgrade():
    op.drop_index('ix_charges_status_hold_released_at', table_name='charges')
