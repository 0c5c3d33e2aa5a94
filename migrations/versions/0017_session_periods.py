"""A Session's charging periods in their own table (ocpi_session_periods), so a PATCH
appends rows instead of rewriting the whole Session; the periods already stored move out of
ocpi_sessions.raw, which keeps `charging_periods` as [] where there was a list

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 01:40:00.000000

"""
import json
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 500


def _dumps(value):
    # Frozen here (not ocpi.transport.json_dumps, which may change): numbers keep their
    # digits, as the stored JSON always has.
    if isinstance(value, Decimal):
        return format(value, 'f')
    if isinstance(value, dict):
        return '{' + ','.join(f'{json.dumps(str(k), ensure_ascii=False)}:{_dumps(v)}'
                              for k, v in value.items()) + '}'
    if isinstance(value, list):
        return '[' + ','.join(_dumps(v) for v in value) + ']'
    return json.dumps(value, ensure_ascii=False)


def _when(text):
    text = text.strip()
    if text.endswith(('Z', 'z')):
        text = text[:-1] + '+00:00'
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None)


def upgrade():
    with op.batch_alter_table('ocpi_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_count', sa.Integer(), server_default='0',
                                      nullable=False))
    op.create_table(
        'ocpi_session_periods',
        sa.Column('session_pk', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('start_date_time', sa.DateTime(), nullable=False),
        sa.Column('raw', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['session_pk'], ['ocpi_sessions.pk'],
                                name=op.f('fk_ocpi_session_periods_session_pk_ocpi_sessions'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_pk', 'seq', name=op.f('pk_ocpi_session_periods')),
    )
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text(
            'SELECT pk, raw FROM ocpi_sessions WHERE pk > :last ORDER BY pk LIMIT :n'),
            {'last': last, 'n': BATCH}).all()
        if not rows:
            return
        for pk, raw in rows:
            data = json.loads(raw, parse_float=Decimal)
            periods = data.get('charging_periods')
            if not isinstance(periods, list):
                continue
            if periods:
                conn.execute(sa.text(
                    'INSERT INTO ocpi_session_periods (session_pk, seq, start_date_time, raw) '
                    'VALUES (:pk, :seq, :at, :raw)'),
                    [{'pk': pk, 'seq': seq, 'at': _when(period['start_date_time']),
                      'raw': _dumps(period)} for seq, period in enumerate(periods)])
            data['charging_periods'] = []
            conn.execute(sa.text(
                'UPDATE ocpi_sessions SET raw = :raw, period_count = :n WHERE pk = :pk'),
                {'raw': _dumps(data), 'n': len(periods), 'pk': pk})
        last = rows[-1][0]


def downgrade():
    conn = op.get_bind()
    sessions = conn.execute(sa.text(
        'SELECT pk, raw FROM ocpi_sessions WHERE period_count > 0')).all()
    for pk, raw in sessions:
        data = json.loads(raw, parse_float=Decimal)
        periods = conn.execute(sa.text(
            'SELECT raw FROM ocpi_session_periods WHERE session_pk = :pk ORDER BY seq'),
            {'pk': pk}).scalars().all()
        data['charging_periods'] = [json.loads(p, parse_float=Decimal) for p in periods]
        conn.execute(sa.text('UPDATE ocpi_sessions SET raw = :raw WHERE pk = :pk'),
                     {'raw': _dumps(data), 'pk': pk})
    op.drop_table('ocpi_session_periods')
    with op.batch_alter_table('ocpi_sessions', schema=None) as batch_op:
        batch_op.drop_column('period_count')
