"""Indexes for the operator's charge search and filters: charges by date, by CPO and site,
by the card's last four digits, by receipt and CDR, and by the lower-cased public id, EVSE-ID,
e-mail, PaymentIntent and Session id; receipts by number; CDRs by id. The card's brand and
last four were already kept on the charge (0001), filled in when the hold is authorised.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 01:40:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

PLAIN = [
    ('ix_charges_created_at', 'charges', ['created_at']),
    ('ix_charges_party_pk_location_id', 'charges', ['party_pk', 'location_id']),
    ('ix_charges_card_last4', 'charges', ['card_last4']),
    ('ix_charges_receipt_pk', 'charges', ['receipt_pk']),
    ('ix_charges_cdr_pk', 'charges', ['cdr_pk']),
    ('ix_receipts_number', 'receipts', ['number']),
    ('ix_ocpi_cdrs_cdr_id', 'ocpi_cdrs', ['cdr_id']),
]
LOWERED = ['evse_id', 'email', 'hold_id', 'session_id']


def upgrade():
    for name, table, columns in PLAIN:
        op.create_index(name, table, columns)
    # The public id is searched by prefix (LIKE 'abc%'): on PostgreSQL only an index in
    # byte order (varchar_pattern_ops) serves that under a non-C collation.
    ops = ' varchar_pattern_ops' if op.get_bind().dialect.name == 'postgresql' else ''
    op.create_index('ix_charges_public_id_lower', 'charges', [sa.text(f'lower(public_id){ops}')])
    for column in LOWERED:
        op.create_index(f'ix_charges_{column}_lower', 'charges', [sa.text(f'lower({column})')])


def downgrade():
    for column in LOWERED:
        op.drop_index(f'ix_charges_{column}_lower', table_name='charges')
    op.drop_index('ix_charges_public_id_lower', table_name='charges')
    for name, table, _columns in reversed(PLAIN):
        op.drop_index(name, table_name=table)
