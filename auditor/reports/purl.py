"""The BOM's two identifiers written directly: package URLs (purl) of type huggingface and generic, and the
document's name-based serial number (UUID version 5).

packageurl-python and the uuid module wrote them before. Importing them (packageurl imports dataclasses and
inspect) cost ~32 ms in every BOM (-X importtime: packageurl 24.5 ms, uuid 8 ms). tests/test_purl.py checks every string here against
packageurl's PackageURL(...).to_string() and uuid.uuid5() over hostile inputs. Only what these two purl types
need is here: packageurl's normalisation for them (strip, "/" trimmed, version lower-cased for huggingface,
qualifiers sorted, percent-encoding with ":" kept).
"""
from __future__ import annotations

import hashlib
from urllib.parse import quote

__all__ = ["package_url", "uuid5_urn"]

# RFC 4122 appendix C, the namespace for URLs (uuid.NAMESPACE_URL)
_NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")
_LOWER_VERSION = ("huggingface", "oci")


def _quote(text: str) -> str:
    return quote(text.encode("utf-8")).replace("%3A", ":")


def package_url(kind: str, name: str, namespace: str = "", version: str = "",
                qualifiers: dict[str, str] | None = None) -> str | None:
    """pkg:KIND/NAMESPACE/NAME@VERSION?QUALIFIERS, or None where packageurl would refuse it (no name left).
    packageurl normalises twice (when the object is made, then in to_string), and so does this."""
    name_text = _quote(name.strip().strip("/")).strip("/") if name else ""
    if not kind or not name_text:
        return None
    parts = ["pkg:", kind.strip().lower(), "/"]
    segments = _segments("/".join(_segments(namespace)))
    if segments:
        parts += ["/".join(_quote(seg) for seg in segments), "/"]
    parts.append(name_text)
    version_text = version.strip()
    if kind in _LOWER_VERSION:
        version_text = _quote(version_text.lower()).lower()
    else:
        version_text = _quote(version_text)
    if version_text:
        parts += ["@", version_text]
    pairs = sorted((key.strip().lower(), _quote(value)) for key, value in (qualifiers or {}).items()
                   if key.strip() and value.strip())
    if pairs:
        parts += ["?", "&".join(f"{key}={value}" for key, value in pairs)]
    return "".join(parts)


def _segments(namespace: str) -> list[str]:
    return [seg for seg in namespace.strip().strip("/").split("/") if seg.strip()]


def uuid5_urn(name: str) -> str:
    """uuid.uuid5(uuid.NAMESPACE_URL, name).urn: SHA-1 of the namespace and the name, version and variant set."""
    raw = bytearray(hashlib.sha1(_NAMESPACE_URL + name.encode("utf-8"), usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"urn:uuid:{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
