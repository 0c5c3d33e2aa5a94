"""The demo gateway counts the failed cards on each PaymentIntent, to refuse it after a few
(as an acquirer does against card testing)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('demo_payment_intents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_cards', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('demo_payment_intents', schema=None) as batch_op:
        batch_op.drop_column('failed_cards')
