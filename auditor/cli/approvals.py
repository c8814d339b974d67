"""`auditor approvals list|show|revoke|verify|reaudit`: the approvals registry."""
from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from auditor.cli.args import Command, Group, echo

DB_HELP = ("Approvals database URL: sqlite:///PATH or postgresql://USER@HOST/DB (default: AUDITOR_DB, "
           "else approvals.db in the user's data folder).")


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="", help=DB_HELP)


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="fmt", default="text", choices=["text", "json"], help="[default: %(default)s]")


def open_store(db: str):  # type: ignore[no-untyped-def]
    from auditor.approvals.store import Store
    return Store(db or None)


def _json(value: Any) -> None:
    echo(json.dumps(value, indent=2, ensure_ascii=False))


def _list_arguments(p: argparse.ArgumentParser) -> None:
    add_db(p)
    add_format(p)
    p.add_argument("--all", dest="show_all", action="store_true", help="Also list expired and revoked approvals.")


def list_command(db: str, fmt: str, show_all: bool) -> int:
    """Every approval and its status (active, expired, revoked)."""
    from auditor.approvals import registry
    now = datetime.now(UTC)
    with open_store(db) as store:
        rows = [a for a in registry.approvals(store) if show_all or a.status(now) == "active"]
    if fmt == "json":
        _json([a.to_dict(now) for a in rows])
        return 0
    for a in rows:
        info = a.data["approval"]
        until = f" until {info['expires_at'][:10]}" if info.get("expires_at") else ""
        override = " OVERRIDE" if info.get("override") else ""
        echo(f"{a.seq:>5}  {a.status(now):<8} {a.label()}  {a.entry.manifest_digest[:16]}  "
             f"{a.data['audit']['verdict']}{override}  by {info['by']}{until}")
    if not rows:
        echo("no approvals", err=True)
    return 0


def _show_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("approval_id", type=int)
    add_db(p)
    add_format(p)


def show_command(approval_id: int, db: str, fmt: str) -> int:
    """One approval in full."""
    from auditor.approvals import registry
    now = datetime.now(UTC)
    with open_store(db) as store:
        a = registry.get(store, approval_id)
    data = a.to_dict(now)
    if fmt == "json":
        _json(data)
        return 0
    info, audit = data["approval"], data["audit"]
    lines = [f"approval {a.seq}: {data['status']}", f"  model     {a.label()} ({a.model.get('kind', '')})",
             f"  manifest  sha256:{a.entry.manifest_digest}", f"  by        {info['by']} at {a.entry.created_at}",
             f"  reason    {info['reason']}", f"  ticket    {info.get('ticket') or '-'}",
             f"  expires   {info.get('expires_at') or 'never'}",
             f"  audit     {audit['verdict']} under policy {audit['policy']} (rules {audit['rules_digest'][:16]}, "
             f"auditor {audit['tool_version']}), result {audit['result_digest']}",
             f"  files     {len(a.model.get('files', []))}"]
    if info.get("override"):
        lines.append(f"  OVERRIDE  {info['override']}")
    if a.revocation:
        lines.append(f"  revoked   by {a.revocation['by']} at {a.revocation['at']}: {a.revocation['reason']}")
    echo("\n".join(lines))
    return 0


def _revoke_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("approval_id", type=int)
    p.add_argument("--by", required=True, help="Who revokes it.")
    p.add_argument("--reason", required=True, help="Why.")
    add_db(p)


def revoke_command(approval_id: int, by: str, reason: str, db: str) -> int:
    """Revoke an approval (a new entry in the history; nothing is deleted)."""
    from auditor.approvals import registry
    with open_store(db) as store:
        entry = registry.revoke(store, approval_id, by=by, reason=reason)
    echo(f"approval {approval_id} revoked (entry {entry.seq})", err=True)
    return 0


def _db_and_format(p: argparse.ArgumentParser) -> None:
    add_db(p)
    add_format(p)


def verify_command(db: str, fmt: str) -> int:
    """Check the history's hash chain: exit 1 when a row was edited or deleted."""
    with open_store(db) as store:
        problems = store.verify()
        seq, head = store.head()
    if fmt == "json":
        _json({"intact": not problems, "entries": seq, "head": head, "problems": problems})
    elif problems:
        echo("\n".join([*problems, f"TAMPERED: {len(problems)} problem(s) in the approvals history"]))
    else:
        echo(f"OK: {seq} entries, chain head {head}")
    return 1 if problems else 0


def _reaudit_arguments(p: argparse.ArgumentParser) -> None:
    _db_and_format(p)
    p.add_argument("--policy", default="", help="Judge with this policy instead of each approval's own.")


def reaudit_command(db: str, fmt: str, policy: str) -> int:
    """Audit every approved model again with today's rules; exit 1 when any no longer passes."""
    from auditor.approvals import registry
    with open_store(db) as store:
        rows = registry.reaudit(store, policy_source=policy)
    failing = [r for r in rows if not r.still_passes]
    if fmt == "json":
        _json({"reaudited": len(rows), "no_longer_pass": len(failing), "approvals": [r.to_dict() for r in rows]})
    else:
        for r in failing:
            echo(f"NO LONGER PASSES  approval {r.approval}  {r.label}: {r.before} -> {r.after}: {r.reason}")
        echo(f"{len(rows)} approved model(s) re-audited, {len(failing)} no longer pass")
    return 1 if failing else 0


command = Group("approvals", "List, show, revoke and verify approvals; re-audit the approved models.", (
    Command("list", list_command, _list_arguments), Command("show", show_command, _show_arguments),
    Command("revoke", revoke_command, _revoke_arguments), Command("verify", verify_command, _db_and_format),
    Command("reaudit", reaudit_command, _reaudit_arguments)))
