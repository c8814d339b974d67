"""The registry's schema and its ordered migrations.

`schema_version` holds one row: the number of migrations applied. `upgrade()` applies the missing ones
in order inside one transaction that holds the write lock, so two processes opening a new database at
once neither race nor apply a migration twice.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

# The append-only, hash-chained history. Never updated or deleted by the tool.
entries = sa.Table(
    "entries", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),              # approve | revoke
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("subject", sa.Integer, nullable=True),               # the approval a revoke refers to
    sa.Column("manifest_digest", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),                    # canonical JSON: who, why, what was audited
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)

# One row (id 1): the last entry's seq and hash. Locked by every append, so appends are serialised.
chain_head = sa.Table(
    "chain_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
)

GENESIS = "0" * 64


def _create_tables(conn: sa.Connection) -> None:
    entries.create(conn)
    chain_head.create(conn)
    conn.execute(chain_head.insert().values(id=1, seq=0, head_hash=GENESIS))


def _index_manifest(conn: sa.Connection) -> None:
    # plain DDL: an sa.Index object would attach itself to `entries` and be created again by migration 1
    conn.execute(sa.text("CREATE INDEX entries_manifest_digest ON entries (manifest_digest)"))


MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (_create_tables, _index_manifest)
LATEST = len(MIGRATIONS)


def upgrade(conn: sa.Connection) -> int:
    """Bring the schema to LATEST inside the caller's (locked) transaction; returns the version before."""
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(schema_version.c.version)).scalar()
    if current is None:
        conn.execute(schema_version.insert().values(version=0))
        current = 0
    for migration in MIGRATIONS[current:]:
        migration(conn)
    if current != LATEST:
        conn.execute(schema_version.update().values(version=LATEST))
    return int(current)
