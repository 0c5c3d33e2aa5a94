"""The charge link e-mailed once per charge: when it was claimed for sending
(charges.link_mailed_at)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_mailed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_column('link_mailed_at')
