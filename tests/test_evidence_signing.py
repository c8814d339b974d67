"""Signed evidence: the BOM in an in-toto statement in a DSSE envelope, signed with real keys of each
supported type; any change to the envelope, the statement or the files must fail verification."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from reports_sample import hostile_result

from auditor.errors import AuditorError
from auditor.reports import attestation as evidence_signing
from auditor.reports import cyclonedx
from auditor.reports.attestation import EvidenceError
from auditor.workflows import demo
from tests.conftest import invoke


def _pem(key, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _pub_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="session")
def keys():
    return {"ed25519": ed25519.Ed25519PrivateKey.generate(), "p256": ec.generate_private_key(ec.SECP256R1()),
            "p384": ec.generate_private_key(ec.SECP384R1()),
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture(scope="session")
def result():
    return hostile_result()


@pytest.mark.parametrize("kind", ["ed25519", "p256", "p384", "rsa"])
def test_sign_and_verify_each_key_type(keys, result, kind):
    key = keys[kind]
    envelope = evidence_signing.sign(result, key)
    verified = evidence_signing.verify(envelope.encode(), key.public_key())
    assert verified.keyid == evidence_signing.keyid(key.public_key())
    assert verified.statement["predicateType"] == "https://cyclonedx.org/bom"
    assert verified.subjects[0]["digest"]["sha256"] == cyclonedx.manifest_digest(result)
    assert {s["name"]: s["digest"]["sha256"] for s in verified.subjects[1:]} == \
        {f.path: f.sha256 for f in result.files}
    assert cyclonedx.validate(json.dumps(verified.bom)) == []
    other = keys["p256" if kind != "p256" else "ed25519"]
    with pytest.raises(EvidenceError, match="no valid signature"):
        evidence_signing.verify(envelope.encode(), other.public_key())


def _code(run) -> int:
    """The exit code `auditor` would give: main() maps an AuditorError to its own exit_code."""
    return run.exception.exit_code if isinstance(run.exception, AuditorError) else run.exit_code


def _tamper_statement(envelope: str, change) -> bytes:
    env = json.loads(envelope)
    stmt = json.loads(base64.b64decode(env["payload"]))
    change(stmt)
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    return json.dumps(env).encode()


def test_tampered_evidence_fails(keys, result):
    key = keys["ed25519"]
    envelope = evidence_signing.sign(result, key)

    def flip_claim(stmt):
        stmt["predicate"]["declarations"]["attestations"][0]["map"][2]["conformance"]["score"] = 1

    def swap_hash(stmt):
        stmt["subject"][1]["digest"]["sha256"] = "0" * 64

    for change in (flip_claim, swap_hash):
        with pytest.raises(EvidenceError):
            evidence_signing.verify(_tamper_statement(envelope, change), key.public_key())
    env = json.loads(envelope)
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[5] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(EvidenceError):
        evidence_signing.verify(json.dumps(env).encode(), key.public_key())
    for broken in (b"not json", b"{}", json.dumps({**json.loads(envelope), "payloadType": "text/plain"}).encode()):
        with pytest.raises(EvidenceError):
            evidence_signing.verify(broken, key.public_key())


def test_a_signed_but_self_contradicting_statement_fails(keys, result):
    key = keys["p256"]
    stmt = evidence_signing.statement(result, cyclonedx.to_dict(result))
    stmt["subject"][1]["digest"]["sha256"] = "f" * 64        # disagrees with the BOM's file hash
    envelope = json.dumps(evidence_signing.sign_statement(stmt, key)).encode()
    with pytest.raises(EvidenceError, match="disagrees with the BOM"):
        evidence_signing.verify(envelope, key.public_key())


def test_cli_scan_sign_and_verify_evidence(keys, tmp_path, monkeypatch):
    repo = demo.build_clean(tmp_path / "model")
    key = keys["p256"]
    (tmp_path / "key.pem").write_bytes(_pem(key, b"s3cret"))
    (tmp_path / "key.pub").write_bytes(_pub_pem(key))
    (tmp_path / "other.pub").write_bytes(_pub_pem(keys["ed25519"]))
    out = tmp_path / "report.json"
    run = invoke(["scan", str(repo), "-q", "-o", str(out), "--sign-key", str(tmp_path / "key.pem")])
    assert _code(run) == 2 and "AUDITOR_KEY_PASSWORD" in str(run.exception or run.output)
    monkeypatch.setenv("AUDITOR_KEY_PASSWORD", "s3cret")
    run = invoke(["scan", str(repo), "-q", "-o", str(out), "--sign-key", str(tmp_path / "key.pem")])
    assert run.exception is None, run.exception
    evidence = tmp_path / "report.json.dsse.json"
    assert evidence.is_file()
    bom_out = tmp_path / "bom.json"
    run = invoke(["verify-evidence", str(evidence), "--key", str(tmp_path / "key.pub"),
                              "--model", str(repo), "--extract-bom", str(bom_out)])
    assert run.exit_code == 0, run.output
    assert "verified" in run.output and "No direct connection" in run.output
    assert cyclonedx.validate(bom_out.read_text()) == []
    run = invoke(["verify-evidence", str(evidence), "--key", str(tmp_path / "other.pub")])
    assert _code(run) == 1
    (repo / "config.json").write_text('{"changed": true}')
    run = invoke(["verify-evidence", str(evidence), "--key", str(tmp_path / "key.pub"),
                              "--model", str(repo)])
    assert _code(run) == 1 and "config.json" in str(run.exception)
    tampered = evidence.read_text().replace('"payload": "ey', '"payload": "ez')
    evidence.write_text(tampered)
    run = invoke(["verify-evidence", str(evidence), "--key", str(tmp_path / "key.pub")])
    assert _code(run) == 1 and "no valid signature" in str(run.exception)


def test_bad_keys_are_user_errors(tmp_path):
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(AuditorError):
        evidence_signing.load_private_key(tmp_path / "junk.pem")
    with pytest.raises(AuditorError):
        evidence_signing.load_public_key(tmp_path / "missing.pub")
