"""auditor.reports.purl against the libraries it stands in for: packageurl's PackageURL(...).to_string() and
uuid.uuid5(), on hostile strings (a repo id, a revision and an endpoint come from whoever made the model)."""
from __future__ import annotations

import itertools
import random
import uuid

from packageurl import PackageURL

from auditor.reports.purl import package_url, uuid5_urn

HOSTILE = ["", " ", "/", "//", " / ", "a", "A", " a ", "/a/", "a/b", " /x", "x/ /y", "Qwen", "Qwen2.5-7B",
           "name@1", "a?b", "a#b", "a%b", "a%2Fb", "a:b", "a b", "a+b", "a&b=c", "ÄÖ", "中文模型", "\u202eevil",
           "tab\there", "new\nline", "é", "ǅ", "İ", "emoji🙂", "..", ".", "~x", "-", "_", "main", "refs/pr/1",
           "0123456789abcdef0123456789abcdef01234567", "DEADBEEF", "v1.0 ", "\x00", "%00", "a/../b"]
ENDPOINTS = ["", "https://hf.internal.example", "https://mirror.example:8443/hub/", "http://[::1]:9/x?y=1&z",
             "https://ÄÖ.example/ä ü"]


def reference(kind: str, name: str, namespace: str, version: str, qualifiers: dict[str, str]) -> str | None:
    try:
        return str(PackageURL(type=kind, namespace=namespace or None, name=name, version=version or None,
                              qualifiers=qualifiers or None).to_string())
    except (ValueError, TypeError):       # no name (TypeError: a name that normalises to nothing)
        return None


def test_huggingface_purls_match_packageurl_on_hostile_parts() -> None:
    rng = random.Random(7)
    cases = list(itertools.product(HOSTILE, HOSTILE))
    for namespace, name in cases:
        version = rng.choice(HOSTILE)
        endpoint = rng.choice(ENDPOINTS)
        qualifiers = {"repository_url": endpoint} if endpoint else {}
        want = reference("huggingface", name, namespace, version, qualifiers)
        got = package_url("huggingface", name, namespace, version, qualifiers)
        assert got == want, (namespace, name, version, endpoint)


def test_generic_purls_match_packageurl() -> None:
    for name, version in itertools.product(HOSTILE, HOSTILE):
        assert package_url("generic", name, version=version) == reference("generic", name, "", version, {}), \
            (name, version)


def test_purl_examples_read_as_the_spec_writes_them() -> None:
    assert package_url("huggingface", "Qwen2.5-7B", "Qwen", "ABCDEF") == "pkg:huggingface/Qwen/Qwen2.5-7B@abcdef"
    assert package_url("generic", "a b", version="1:2") == "pkg:generic/a%20b@1:2"
    assert package_url("huggingface", "/", "org") is None and package_url("generic", "") is None


def test_serial_numbers_match_uuid5() -> None:
    for name in [*HOSTILE, "auditor:/models/x:2026-12-03T10:00:00+00:00:" + "ab" * 32]:
        assert uuid5_urn(name) == uuid.uuid5(uuid.NAMESPACE_URL, name).urn, name
