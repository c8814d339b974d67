"""Approvals: a tamper-evident registry of who approved which model (by its manifest digest), and the
check that a deployment's files match an unexpired, unrevoked approval.

- store.py: SQLAlchemy Core storage (SQLite default, PostgreSQL), serialised appends;
- chain.py: the hash chain over the append-only history, and its verification;
- migrations.py: the schema and its ordered migrations;
- results.py: reading an audit result JSON and refusing anything that is not one, or was edited;
- registry.py: approve, revoke, the approvals' current state, check and reaudit.
"""
