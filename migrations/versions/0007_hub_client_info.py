"""HubClientInfo: when a hub's ClientInfo about a CPO it acts for was last updated, so an
older ClientInfo (a pulled list crossing a push) never overwrites a newer status

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ocpi_grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hub_status_updated', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('ocpi_grants', schema=None) as batch_op:
        batch_op.drop_column('hub_status_updated')
