"""Signed evidence: the CycloneDX BOM as the predicate of an in-toto Statement v1, in a DSSE envelope
signed with the user's own key (shared/reference/standards.md §6). Verification is offline.

Subjects: the model (digest = the manifest SHA-256 over every file's hash, see reports.cyclonedx) and
each file with its SHA-256, so `in-toto` tooling and our verifier can match them against files on disk.
Keys: PEM Ed25519, ECDSA (P-256/384/521 with SHA-256/384/512) or RSA (PKCS#1 v1.5, SHA-256). An
encrypted private key takes its password from the AUDITOR_KEY_PASSWORD environment variable.
"""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from auditor import settings
from auditor.errors import AuditorError
from auditor.model import AuditResult
from auditor.record import record

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://cyclonedx.org/bom"
PASSWORD_ENV = "AUDITOR_KEY_PASSWORD"
MAX_ENVELOPE_BYTES = 256 * 1024 * 1024
MAX_SUBJECTS = 100_000


class EvidenceError(AuditorError):
    """The evidence does not verify (exit code 1: a failed check, not a usage error)."""
    exit_code = 1


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def load_private_key(path: str | Path) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    data = _read(path, "signing key")
    password = settings.current().key_password or None
    try:
        key = load_pem_private_key(data, password=password.encode("utf-8") if password else None)
    except TypeError:
        raise AuditorError(f"{path} is encrypted: put its password in {PASSWORD_ENV}") from None
    except ValueError as exc:
        raise AuditorError(f"{path} is not a usable PEM private key ({exc})") from None
    _check_type(key, str(path))
    return key


def load_public_key(path: str | Path) -> Any:
    """A PEM public key; a PEM private key or certificate is accepted too (its public half is used)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    data = _read(path, "key")
    key: Any
    if b"CERTIFICATE" in data:
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except ValueError as exc:
            raise AuditorError(f"{path} is not a usable PEM certificate ({exc})") from None
    elif b"PRIVATE KEY" in data:
        key = load_private_key(path).public_key()
    else:
        try:
            key = load_pem_public_key(data)
        except ValueError as exc:
            raise AuditorError(f"{path} is not a usable PEM public key ({exc})") from None
    _check_type(key, str(path))
    return key


def _read(path: str | Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuditorError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > 1024 * 1024:
        raise AuditorError(f"{what} {path} is larger than 1 MiB: not a PEM key")
    return data


def _check_type(key: Any, where: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, ec.EllipticCurvePrivateKey,
                            ec.EllipticCurvePublicKey, rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        raise AuditorError(f"{where}: unsupported key type {type(key).__name__} (use Ed25519, ECDSA or RSA)")


def keyid(public_key: Any) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: the same id for a key's private and public halves."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes
    size = getattr(getattr(key, "curve", None), "key_size", 256)
    return hashes.SHA512() if size > 384 else hashes.SHA384() if size > 256 else hashes.SHA256()


def _sign_bytes(key: Any, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_hash_for(key)))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise AuditorError(f"unsupported signing key type {type(key).__name__}")


def _verify_bytes(key: Any, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_hash_for(key)))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def statement(result: AuditResult, bom: dict[str, Any]) -> dict[str, Any]:
    from auditor.reports import view
    from auditor.reports.cyclonedx import manifest_digest
    subjects = [{"name": view.clean(view.model_name(result)), "digest": {"sha256": manifest_digest(result)}}]
    subjects += [{"name": r.path, "digest": {"sha256": r.sha256}} for r in result.files if r.sha256]
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE, "predicate": bom}


def sign_statement(stmt: dict[str, Any], private_key: Any) -> dict[str, Any]:
    payload = json.dumps(stmt, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    signature = _sign_bytes(private_key, pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": keyid(private_key.public_key()),
                            "sig": base64.b64encode(signature).decode("ascii")}]}


def sign(result: AuditResult, private_key: Any, spec: str = "1.6") -> str:
    """The signed evidence file (JSON text) for one audit result; refused when a file changed during the audit."""
    from auditor.reports import cyclonedx
    changed = [f.file for f in result.findings if f.rule == "INVENTORY-CHANGED"]
    if changed:
        raise EvidenceError(f"not signing: {len(changed)} file(s) changed during the audit (first {changed[0]}); "
                            "the hashes and the findings may describe different bytes")
    envelope = sign_statement(statement(result, cyclonedx.to_dict(result, spec)), private_key)
    return json.dumps(envelope, indent=2) + "\n"


@record(frozen=True)
class Verified:
    keyid: str
    statement: dict[str, Any]

    @property
    def bom(self) -> dict[str, Any]:
        predicate = self.statement.get("predicate")
        return predicate if isinstance(predicate, dict) else {}

    @property
    def subjects(self) -> list[dict[str, Any]]:
        return list(self.statement.get("subject", []))


def verify(data: bytes, public_key: Any) -> Verified:
    """Check a DSSE envelope against the key, then that the statement is ours and self-consistent.
    Raises EvidenceError with the first reason it does not verify."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EvidenceError(f"evidence file larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        envelope = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"not a JSON DSSE envelope ({exc})") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signatures"), list):
        raise EvidenceError("not a DSSE envelope: no signatures")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise EvidenceError(f"unexpected payloadType {envelope.get('payloadType')!r}")
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except ValueError:
        raise EvidenceError("payload is not valid base64") from None
    signed = pae(PAYLOAD_TYPE, payload)
    expected = keyid(public_key)
    matched = ""
    for entry in envelope["signatures"][:16]:
        if not isinstance(entry, dict):
            continue
        try:
            sig = base64.b64decode(str(entry.get("sig", "")), validate=True)
        except ValueError:
            continue
        if _verify_bytes(public_key, sig, signed):
            matched = expected
            break
    if not matched:
        raise EvidenceError(f"no valid signature by key {expected[:16]}… (tampered, or signed with another key)")
    try:
        stmt = json.loads(payload)
    except ValueError:
        raise EvidenceError("signed payload is not JSON") from None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        raise EvidenceError("signed payload is not an in-toto Statement v1")
    if stmt.get("predicateType") != PREDICATE_TYPE:
        raise EvidenceError(f"unexpected predicateType {stmt.get('predicateType')!r}")
    _check_subjects(stmt)
    return Verified(keyid=matched, statement=stmt)


def _recorded_hashes(bom: dict[str, Any]) -> dict[Any, Any]:
    """File name -> SHA-256 from the BOM's file components (top level, or nested in the first component)."""
    components = [c for c in bom.get("components") or [] if isinstance(c, dict)]
    nested = [c for top in components[:1] for c in top.get("components") or [] if isinstance(c, dict)]
    recorded = {}
    for comp in (c for c in [*components, *nested] if c.get("type") == "file"):
        for h in comp.get("hashes") or []:
            if isinstance(h, dict) and h.get("alg") == "SHA-256":
                recorded[comp.get("name")] = h.get("content")
    return recorded


def _check_subjects(stmt: dict[str, Any]) -> None:
    """Signed, but does the statement agree with itself? Every file subject must carry the hash the BOM records."""
    subjects = stmt.get("subject")
    if not isinstance(subjects, list) or not subjects or len(subjects) > MAX_SUBJECTS:
        raise EvidenceError("statement has no usable subject list")
    predicate = stmt.get("predicate")
    bom: dict[str, Any] = predicate if isinstance(predicate, dict) else {}
    recorded = _recorded_hashes(bom)
    for s in subjects[1:]:
        name = s.get("name") if isinstance(s, dict) else None
        digest = (s.get("digest") or {}).get("sha256") if isinstance(s, dict) else None
        if name in recorded and recorded[name] != digest:
            raise EvidenceError(f"subject {name} digest disagrees with the BOM")


def check_files(verified: Verified, folder: str | Path) -> list[str]:
    """Compare the signed file subjects with the files in a folder; returns the mismatches (empty = all match)."""
    root = Path(folder).resolve()
    problems = []
    for s in verified.subjects[1:]:
        name, digest = str(s.get("name", "")), str((s.get("digest") or {}).get("sha256", ""))
        path = (root / name).resolve()
        if root not in path.parents:
            problems.append(f"{name}: outside the folder")
            continue
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != digest:
            problems.append(f"{name}: sha256 differs from the signed evidence")
    return problems
