"""The stored Sessions and CDRs the domain is done with (applied_at), so that the sweeper
reads only the few still to apply, through partial indexes, instead of joining every
Session and CDR ever stored (ix_ocpi_sessions_unapplied_end, ix_ocpi_cdrs_unapplied)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 18:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# Frozen here (charging.states.END_TO_COME when written): the states whose session end is
# still to come, in which a stored Session or CDR may yet have to be applied.
END_TO_COME = ("CREATED", "AUTHORIZED", "STARTING", "CHARGING", "STOPPING", "START_FAILED")
UNAPPLIED_SQL = "applied_at IS NULL"
UNAPPLIED_END_SQL = "applied_at IS NULL AND status IN ('COMPLETED', 'INVALID')"


def _backfill(table, stored_at):
    # What is stored already counts as applied when it was stored, unless it names a charge
    # of its sender whose end is still to come: that one the sweeper may have to apply (it
    # looks at it again and the receiver marks it once its charge is past the end). A
    # Session or CDR naming no such charge is one the sweeper would never apply. Un-marked
    # from the few open charges through the indexes on both naming columns, not by a look-up
    # per stored row.
    states = ", ".join(f"'{state}'" for state in END_TO_COME)
    named_by = " UNION ".join(
        f"SELECT {table}.pk FROM {table} JOIN charges ON charges.party_pk = {table}.party_pk "
        f"AND charges.{column} = {table}.{column} WHERE charges.status IN ({states})"
        for column in ("authorization_reference", "token_uid"))
    op.execute(f"UPDATE {table} SET applied_at = {stored_at}")
    op.execute(f"UPDATE {table} SET applied_at = NULL WHERE pk IN ({named_by})")


def upgrade():
    op.add_column('ocpi_sessions', sa.Column('applied_at', sa.DateTime(), nullable=True))
    op.add_column('ocpi_cdrs', sa.Column('applied_at', sa.DateTime(), nullable=True))
    _backfill('ocpi_sessions', 'last_updated')
    _backfill('ocpi_cdrs', 'received_at')
    op.create_index('ix_ocpi_sessions_unapplied_end', 'ocpi_sessions',
                    ['authorization_reference'],
                    postgresql_where=sa.text(UNAPPLIED_END_SQL),
                    sqlite_where=sa.text(UNAPPLIED_END_SQL))
    op.create_index('ix_ocpi_cdrs_unapplied', 'ocpi_cdrs', ['authorization_reference'],
                    postgresql_where=sa.text(UNAPPLIED_SQL),
                    sqlite_where=sa.text(UNAPPLIED_SQL))


def downgrade():
    op.drop_index('ix_ocpi_cdrs_unapplied', table_name='ocpi_cdrs')
    op.drop_index('ix_ocpi_sessions_unapplied_end', table_name='ocpi_sessions')
    # Not in batch mode: on SQLite that copies the table, and dropping ocpi_sessions would
    # take every charging period with it (ON DELETE CASCADE, foreign keys on). SQLite 3.35
    # and later drop a column in place.
    op.drop_column('ocpi_cdrs', 'applied_at')
    op.drop_column('ocpi_sessions', 'applied_at')
