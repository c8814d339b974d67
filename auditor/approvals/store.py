"""Where the approvals live: one SQLAlchemy Core engine over SQLite (default) or PostgreSQL.

Appends are serialised on the chain head: SQLite transactions start with BEGIN IMMEDIATE (the write
lock is taken before the head is read), PostgreSQL reads the head row with SELECT ... FOR UPDATE.
Two processes approving at once therefore queue; neither entry is lost and the chain stays linear.
"""
from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from auditor.approvals import chain, migrations
from auditor.approvals.chain import Entry
from auditor.errors import AuditorError

ENV = "AUDITOR_DB"
SQLITE_BUSY_SECONDS = 60


def default_url() -> str:
    """AUDITOR_DB, else approvals.db in the user's data folder ($XDG_DATA_HOME/auditor on Linux)."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    import platformdirs
    return f"sqlite:///{Path(platformdirs.user_data_dir('auditor')) / 'approvals.db'}"


def _normalise(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise AuditorError(f"--db {url!r}: not a database URL (sqlite:///PATH or postgresql://...)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")   # psycopg 3, not the legacy psycopg2
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise AuditorError(f"--db: unsupported database {parsed.get_backend_name()!r} (use sqlite or postgresql)")
    return parsed


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditorError(f"cannot create {folder} for the approvals database: {exc.strerror or exc}") from None
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None     # we issue BEGIN ourselves (pysqlite's own is deferred)

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


class Store:
    """The approvals registry. `Store(url)` opens (and migrates) it."""

    def __init__(self, url: str | None = None) -> None:
        self.url = _normalise(url or default_url())
        self.is_postgres = self.url.get_backend_name() == "postgresql"
        try:
            self.engine = (sa.create_engine(self.url) if self.is_postgres else _sqlite_engine(self.url))
            with self.engine.begin() as conn:
                if self.is_postgres:   # one migrator at a time, across processes
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7305716)"))
                migrations.upgrade(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise AuditorError(f"approvals database {self.display_url}: {_reason(exc)}") from None
        except ModuleNotFoundError as exc:
            raise AuditorError(f"approvals database {self.display_url}: driver {exc.name} is not installed "
                               f"(pip install 'auditor[postgres]')") from None

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, kind: str, manifest_digest: str, body: dict[str, Any], subject: int | None = None) -> Entry:
        """Add one entry at the head of the chain, atomically."""
        text = chain.canonical(body)
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        head = migrations.chain_head
        try:
            with self.engine.begin() as conn:
                query = sa.select(head.c.seq, head.c.head_hash).where(head.c.id == 1)
                if self.is_postgres:
                    query = query.with_for_update()
                row = conn.execute(query).one()
                seq = int(row.seq) + 1
                digest = chain.entry_hash(seq, kind, created, subject, manifest_digest, text, row.head_hash)
                entry = Entry(seq=seq, kind=kind, created_at=created, subject=subject,
                              manifest_digest=manifest_digest, body=text, prev_hash=row.head_hash,
                              entry_hash=digest)
                conn.execute(migrations.entries.insert().values(**entry.__dict__))
                conn.execute(head.update().where(head.c.id == 1).values(seq=seq, head_hash=digest))
        except sa.exc.SQLAlchemyError as exc:
            raise AuditorError(f"approvals database {self.display_url}: {_reason(exc)}") from None
        return entry

    def entries(self) -> list[Entry]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(migrations.entries).order_by(migrations.entries.c.seq)).all()
        except sa.exc.SQLAlchemyError as exc:
            raise AuditorError(f"approvals database {self.display_url}: {_reason(exc)}") from None
        return [Entry(**row._asdict()) for row in rows]

    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(migrations.chain_head.c.seq, migrations.chain_head.c.head_hash)
                               .where(migrations.chain_head.c.id == 1)).one()
        return int(row.seq), str(row.head_hash)

    def verify(self) -> list[str]:
        """The breaks in the history (empty when intact)."""
        seq, head_hash = self.head()
        return chain.problems(self.entries(), seq, head_hash)


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
