"""The demo gateway records when it captured a payment intent, to date the balance
transaction of its books (payments/demo_books.py) as Stripe dates a charge's

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 01:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('demo_payment_intents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('captured_at', sa.DateTime(), nullable=True))
    # Intents captured before this was recorded: dated by their creation (the hold), which
    # is the same day for most charges, rather than missing from the demo's books.
    op.execute("UPDATE demo_payment_intents SET captured_at = created_at "
               "WHERE status = 'succeeded'")


def downgrade():
    with op.batch_alter_table('demo_payment_intents', schema=None) as batch_op:
        batch_op.drop_column('captured_at')
