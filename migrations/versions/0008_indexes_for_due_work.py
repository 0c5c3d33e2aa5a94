"""Indexes for every look-up on a request path, the sweeper and a dashboard page: charges by
status and age, by EVSE and status, by flag; a charge's location by connection; a party's
messages by module

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_charges_status_updated_at', 'charges', ['status', 'updated_at'])
    op.create_index('ix_charges_evse_uid_status', 'charges', ['evse_uid', 'status'])
    op.create_index('ix_charges_failure_code', 'charges', ['failure_code'])
    op.create_index('ix_ocpi_locations_party_pk_location_id', 'ocpi_locations',
                    ['party_pk', 'location_id'])
    op.create_index('ix_ocpi_messages_party_pk_module_pk', 'ocpi_messages',
                    ['party_pk', 'module', 'pk'])


def downgrade():
    op.drop_index('ix_ocpi_messages_party_pk_module_pk', table_name='ocpi_messages')
    op.drop_index('ix_ocpi_locations_party_pk_location_id', table_name='ocpi_locations')
    op.drop_index('ix_charges_failure_code', table_name='charges')
    op.drop_index('ix_charges_evse_uid_status', table_name='charges')
    op.drop_index('ix_charges_status_updated_at', table_name='charges')
