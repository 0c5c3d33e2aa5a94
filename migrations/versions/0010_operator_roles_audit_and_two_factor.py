"""People: operator roles and disabling, invitations, TOTP two-factor, failed sign-ins per
e-mail (lockout), and the audit log of operator actions (operator_actions). The login that
existed before roles becomes an admin.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=20), server_default='admin',
                                      nullable=False))
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('invite_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('invite_expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_operators_invite_token_hash'),
                                          ['invite_token_hash'])
    op.create_table(
        'login_failures',
        sa.Column('email_hash', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('first_failed_at', sa.DateTime(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('email_hash', name=op.f('pk_login_failures')),
    )
    op.create_table(
        'operator_actions',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('operator_pk', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target', sa.String(length=255), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('client_key_hash', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['operator_pk'], ['operators.pk'],
                                name=op.f('fk_operator_actions_operator_pk_operators')),
        sa.PrimaryKeyConstraint('pk', name=op.f('pk_operator_actions')),
    )
    op.create_index('ix_operator_actions_operator_pk', 'operator_actions', ['operator_pk'])


def downgrade():
    op.drop_index('ix_operator_actions_operator_pk', table_name='operator_actions')
    op.drop_table('operator_actions')
    op.drop_table('login_failures')
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_operators_invite_token_hash'), type_='unique')
        for column in ('totp_last_step', 'totp_secret', 'invite_expires_at',
                       'invite_token_hash', 'disabled_at', 'role'):
            batch_op.drop_column(column)
