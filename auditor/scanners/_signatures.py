"""OpenSSF model-signing signatures: find them, verify them offline with the user's key or certificate.

Verification uses the `model-signing` library (extra `auditor[signing]`) with a public key (elliptic
curve PEM) or a certificate chain (PEM). Both flows are fully offline; keyless Sigstore needs the
network (TUF) and is reported as not verified. The library re-hashes the files itself and compares
them with the signed manifest, so a file changed after signing fails the signature.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SIGNATURE_NAMES = ("model.sig", "model.sigstore", "model.sigstore.json", "model.cert.sig")
SIGNATURE_SUFFIXES = (".sig", ".sigstore", ".sigstore.json")
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class SignatureCheck:
    status: str            # valid | invalid | absent | not checked
    detail: str
    file: str = ""


def find_signatures(paths: list[str]) -> list[str]:
    """Signature files at the root of the model folder, well-known names first."""
    top = [p for p in paths if "/" not in p and p.lower().endswith(SIGNATURE_SUFFIXES)]
    return sorted(top, key=lambda p: (p not in SIGNATURE_NAMES, p))


def verify(root: Path, signature: str, key_path: str, ignore: list[str]) -> SignatureCheck:
    """Verify `signature` (relative to root) over the folder with the key or certificate at key_path."""
    sig_path = root / signature
    if sig_path.stat().st_size > MAX_SIGNATURE_BYTES:
        return SignatureCheck("invalid", f"signature file larger than {MAX_SIGNATURE_BYTES} bytes", signature)
    key = Path(key_path).expanduser()
    try:
        pem = key.read_bytes()
    except OSError as exc:
        return SignatureCheck("not checked", f"cannot read the key {key_path}: {exc.strerror or exc}", signature)
    try:
        from model_signing import hashing, verifying
    except ImportError as exc:
        return SignatureCheck("not checked", f"model-signing is not installed ({exc}); "
                                             "pip install 'auditor[signing]'", signature)
    if _uses_sigstore_keyless(sig_path):
        return SignatureCheck("not checked", "keyless Sigstore signature: verifying it needs the network", signature)
    config = verifying.Config()
    if b"BEGIN CERTIFICATE" in pem:
        config.use_certificate_verifier(certificate_chain=[key])
    else:
        config.use_elliptic_key_verifier(public_key=key)
    # A Hub cache snapshot is symlinks into the cache's blobs (the inventory already checked they stay inside).
    config.set_hashing_config(hashing.Config().use_file_serialization(allow_symlinks=True)
                              .set_allow_symlinks(True).set_ignored_paths(paths=[*ignore, signature]))
    try:
        config.verify(root, sig_path)
    except Exception as exc:  # noqa: BLE001 - any failure to verify is an invalid signature
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return SignatureCheck("invalid", f"{type(exc).__name__}: {first}", signature)
    kind = "certificate" if b"BEGIN CERTIFICATE" in pem else "public key"
    return SignatureCheck("valid", f"verified with the {kind} {key.name}", signature)


def _uses_sigstore_keyless(sig_path: Path) -> bool:
    import json
    try:
        bundle = json.loads(sig_path.read_bytes())
    except (OSError, ValueError):
        return False
    material = bundle.get("verificationMaterial", {}) if isinstance(bundle, dict) else {}
    return isinstance(material, dict) and "publicKey" not in material and bool(material.get("tlogEntries"))
