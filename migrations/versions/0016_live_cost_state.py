"""The live cost carried from one Session update to the next: the tariff engine's priced
state after the Session's closed charging periods (charges.live_cost_state, JSON text)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('live_cost_state', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_column('live_cost_state')
