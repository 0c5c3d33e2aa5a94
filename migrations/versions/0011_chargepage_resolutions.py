"""A charge's resolution by an operator (Needs attention: "mark resolved" with a note).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 02:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('resolution_note', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_column('resolution_note')
        batch_op.drop_column('resolved_by')
        batch_op.drop_column('resolved_at')
