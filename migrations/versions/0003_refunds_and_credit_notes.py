"""Refunds and credit notes: the refunds table, demo refunds, charges.refunded_minor,
credit notes in the receipts table (receipts.credits_pk), receipts.sent_at (e-mailed once)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 03:43:59.786917

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('demo_refunds',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.String(length=64), nullable=False),
    sa.Column('intent_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_demo_refunds')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_demo_refunds_idempotency_key')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_demo_refunds_refund_id'))
    )
    with op.batch_alter_table('demo_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_demo_refunds_intent_id'), ['intent_id'], unique=False)

    op.create_table('refunds',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('gateway', sa.String(length=16), nullable=False),
    sa.Column('hold_id', sa.String(length=255), nullable=False),
    sa.Column('gateway_refund_id', sa.String(length=255), nullable=True),
    sa.Column('gateway_status', sa.String(length=32), nullable=True),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('operator', sa.String(length=255), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('credit_note_pk', sa.Integer(), nullable=True),
    sa.Column('credit_note_number', sa.String(length=48), nullable=True),
    sa.ForeignKeyConstraint(['credit_note_pk'], ['receipts.pk'], name=op.f('fk_refunds_credit_note_pk_receipts')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_refunds')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_refunds_idempotency_key')),
    sa.UniqueConstraint('reference', 'sequence', name=op.f('uq_refunds_reference'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_reference'), ['reference'], unique=False)

    # Existing charges have refunded nothing.
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_minor', sa.Integer(), server_default='0', nullable=False))

    # credits_pk: the receipt a credit note credits. No foreign key on purpose: SQLite could
    # add one only by rebuilding `receipts`, which it refuses while charges reference it.
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credits_pk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_receipts_credits_pk'), ['credits_pk'], unique=False)


def downgrade():
    # Columns are dropped in place (SQLite 3.35+), not by batch mode's copy and move: SQLite
    # refuses to drop `receipts` or `charges` while other tables reference them.
    op.drop_index(op.f('ix_receipts_credits_pk'), table_name='receipts')
    op.drop_column('receipts', 'sent_at')
    op.drop_column('receipts', 'credits_pk')
    op.drop_column('charges', 'refunded_minor')
    op.drop_index(op.f('ix_refunds_reference'), table_name='refunds')
    op.drop_table('refunds')
    op.drop_index(op.f('ix_demo_refunds_intent_id'), table_name='demo_refunds')
    op.drop_table('demo_refunds')
