"""Chargers' health: every EVSE status a CPO sends that changes the stored one
(ocpi_evse_status_changes), and an index to count a charger's failed starts from the charges'
timelines (charge_events by to_status).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 01:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ocpi_evse_status_changes',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('location_pk', sa.Integer(), nullable=False),
        sa.Column('evse_uid', sa.String(length=36), nullable=False),
        sa.Column('previous_status', sa.String(length=16), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['location_pk'], ['ocpi_locations.pk'], ondelete='CASCADE',
            name=op.f('fk_ocpi_evse_status_changes_location_pk_ocpi_locations')),
        sa.PrimaryKeyConstraint('pk', name=op.f('pk_ocpi_evse_status_changes')),
    )
    op.create_index('ix_ocpi_evse_status_changes_evse', 'ocpi_evse_status_changes',
                    ['location_pk', 'evse_uid', 'changed_at'])
    op.create_index('ix_charge_events_to_status_charge_pk', 'charge_events',
                    ['to_status', 'charge_pk'])


def downgrade():
    op.drop_index('ix_charge_events_to_status_charge_pk', table_name='charge_events')
    op.drop_index('ix_ocpi_evse_status_changes_evse', table_name='ocpi_evse_status_changes')
    op.drop_table('ocpi_evse_status_changes')
