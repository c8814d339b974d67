"""OpenSSF model-signing signatures: find them, verify them offline with the user's key or certificate.

Verification uses the `model-signing` library's own verifier (extra `auditor[signing]`) with a public
key (elliptic curve PEM) or a certificate chain (PEM), configured from the signature: key or
certificate from its verification material, hash algorithm (sha256, blake2, blake3) and file or
shard serialization from its signed predicate. Both flows are fully offline; keyless Sigstore needs
the network (TUF) and is reported as not verified. The library re-hashes the files itself and compares
them with the signed manifest, so a file changed after signing, or a file it does not cover (an extra
unsigned *.sig included), fails the signature.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Literal

from auditor.record import record

SIGNATURE_NAMES = ("model.sig", "model.sigstore", "model.sigstore.json", "model.cert.sig")
SIGNATURE_SUFFIXES = (".sig", ".sigstore", ".sigstore.json")
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024


@record(frozen=True)
class SignatureCheck:
    status: str            # valid | invalid | absent | not checked
    detail: str
    file: str = ""


def find_signatures(paths: list[str]) -> list[str]:
    """Signature files at the root of the model folder, well-known names first."""
    top = [p for p in paths if "/" not in p and p.lower().endswith(SIGNATURE_SUFFIXES)]
    return sorted(top, key=lambda p: (p not in SIGNATURE_NAMES, p))


def verify(root: Path, signature: str, key_path: str, others: list[str]) -> SignatureCheck:
    """Verify `signature` (relative to root) over the folder with the key or certificate at key_path.

    Every other signature-like file at the root (`others`) is accounted for: one that is itself a valid
    signature with the same key is left out of the hashing (as `signature` is); any other stays in,
    so model-signing reports it as a file the signature does not cover unless the manifest signs it."""
    key = Path(key_path).expanduser()
    try:
        pem = key.read_bytes()
    except OSError as exc:
        return SignatureCheck("not checked", f"cannot read the key {key_path}: {exc.strerror or exc}", signature)
    try:
        import model_signing  # noqa: F401
    except ImportError as exc:
        return SignatureCheck("not checked", f"model-signing is not installed ({exc}); "
                                             "pip install 'auditor[signing]'", signature)
    valid_others = [o for o in others if _check(root, o, pem, key, [signature, o]).status == "valid"]
    check = _check(root, signature, pem, key, [signature, *valid_others])
    if check.status == "valid" and others:
        unsigned = sorted(set(others) - set(valid_others))
        detail = check.detail + (f"; also valid: {', '.join(valid_others)}" if valid_others else "") + \
            (f"; signed as files of the model: {', '.join(unsigned)}" if unsigned else "")
        return SignatureCheck("valid", detail, signature)
    return check


def _check(root: Path, signature: str, pem: bytes, key: Path, ignore: list[str]) -> SignatureCheck:
    """One signature with model-signing's verifier, configured from what the signature says."""
    from model_signing import verifying
    sig_path = root / signature
    if sig_path.stat().st_size > MAX_SIGNATURE_BYTES:
        return SignatureCheck("invalid", f"signature file larger than {MAX_SIGNATURE_BYTES} bytes", signature)
    described = describe(sig_path)
    if isinstance(described, str):
        return SignatureCheck("invalid", described, signature)
    material, serialization = described
    if material == "keyless":
        return SignatureCheck("not checked", "keyless Sigstore signature: verifying it needs the network", signature)
    is_cert = b"BEGIN CERTIFICATE" in pem
    if material == "certificate" and not is_cert:
        return SignatureCheck("not checked", "signed with a certificate: --verify-key must be the certificate "
                                             "chain (PEM), not a public key", signature)
    if material == "key" and is_cert:
        return SignatureCheck("not checked", "signed with a key: --verify-key must be the public key (PEM)",
                              signature)
    config = verifying.Config()
    try:
        if is_cert:
            config.use_certificate_verifier(certificate_chain=[key])
        else:
            config.use_elliptic_key_verifier(public_key=key)
        config.set_hashing_config(_hashing(serialization, ignore))
        config.verify(root, sig_path)
    except Exception as exc:  # noqa: BLE001 - any failure to verify is an invalid signature
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return SignatureCheck("invalid", f"{type(exc).__name__}: {first[:400]}", signature)
    kind = "certificate" if is_cert else "public key"
    return SignatureCheck("valid", f"verified with the {kind} {key.name} ({_describe_serialization(serialization)})",
                          signature)


def describe(sig_path: Path) -> tuple[str, dict[str, Any]] | str:
    """(key | certificate | keyless, the serialization the signer used) from the bundle, or why not.

    Read before verification only to configure it: model-signing then checks the signed manifest, so a
    bundle that lies here only makes the digests disagree (invalid), never a false valid."""
    try:
        bundle = json.loads(sig_path.read_bytes())
        material = bundle["verificationMaterial"]
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        serialization = payload["predicate"]["serialization"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"not a model-signing signature bundle ({type(exc).__name__})"
    if not isinstance(material, dict) or not isinstance(serialization, dict):
        return "not a model-signing signature bundle"
    if "publicKey" in material:
        kind = "key"
    elif material.get("tlogEntries"):
        kind = "keyless"
    else:
        kind = "certificate"
    return kind, serialization


def _hashing(serialization: dict[str, Any], ignore: list[str]) -> Any:
    """model-signing's hashing config for what the signer used. Symlinks are followed: a Hub cache
    snapshot is symlinks into the cache's blobs (the inventory checked they stay inside)."""
    from model_signing import hashing
    algorithm = _ALGORITHMS.get(str(serialization.get("hash_type", "")).lower())
    if algorithm is None:
        raise ValueError(f"hash algorithm {serialization.get('hash_type')!r} is not supported by model-signing")
    ignored = [*serialization.get("ignore_paths", []), *ignore]
    method = serialization.get("method")
    if method == "files":
        config = hashing.Config().use_file_serialization(hashing_algorithm=algorithm, allow_symlinks=True)
    elif method == "shards":
        config = hashing.Config().use_shard_serialization(hashing_algorithm=algorithm, allow_symlinks=True,
                                                         shard_size=int(serialization["shard_size"]))
    else:
        raise ValueError(f"serialization method {method!r} is not supported by model-signing")
    return config.set_allow_symlinks(True).set_ignored_paths(paths=ignored)


Algorithm = Literal["sha256", "blake2", "blake3"]
_ALGORITHMS: dict[str, Algorithm] = {"sha256": "sha256", "blake2b": "blake2", "blake2": "blake2", "blake3": "blake3"}


def _describe_serialization(serialization: dict[str, Any]) -> str:
    method = serialization.get("method")
    size = f", shards of {int(serialization.get('shard_size', 0))} bytes" if method == "shards" else ""
    return f"{serialization.get('hash_type')} {method}{size}"
