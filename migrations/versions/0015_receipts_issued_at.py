"""The receipts by the day they were issued: the dashboard's receipts list, reports and
exports read a range of days (ix_receipts_issued_at)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 01:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_receipts_issued_at', 'receipts', ['issued_at'])


def downgrade():
    op.drop_index('ix_receipts_issued_at', table_name='receipts')
