"""Provenance: origin, lineage through a real Hub mirror (olah), route, signatures, local targets."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hubfixtures import HubWorld, card, safetensors_bytes

from auditor import inventory, scanners
from auditor.model import Ancestor, Options, Severity, Snapshot
from auditor.parsers import lineage
from auditor.pipeline import audit
from auditor.scanners import provenance

pytest_plugins = ["hub_plugin"]


def by_rule(result, rule: str) -> list:  # type: ignore[no-untyped-def]
    return [f for f in result.findings if f.rule == rule]


@pytest.fixture()
def sensitive_cn_policy(tmp_path: Path) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("name: cn-sensitive\nfail_on: high\nwarn_on: medium\nsensitive_origins: [CN]\n")
    return str(path)


def test_full_lineage_through_the_mirror(hub_world: HubWorld, hub_cache: Path, sensitive_cn_policy: str) -> None:
    result = audit("hf://bartowski/tiny-chat-GGUF", Options(endpoint=hub_world.url, token=False,
                                                             policy=sensitive_cn_policy))
    ancestors = result.snapshot.ancestors
    assert [(a.repo_id, a.relation, a.depth, a.parent) for a in ancestors] == [
        ("acme/tiny-chat", "quantized", 1, "bartowski/tiny-chat-GGUF"),
        ("Qwen/tiny-base", "finetune", 2, "acme/tiny-chat"),
    ]
    assert ancestors[0].commit == hub_world.repos["acme/tiny-chat"].head
    assert ancestors[1].commit == hub_world.repos["Qwen/tiny-base"].head
    assert ancestors[1].card["license"] == "apache-2.0"
    assert "Apache License 2.0" in ancestors[1].license_texts["LICENSE"]
    assert all(not a.error for a in ancestors)
    assert result.snapshot.hosts_contacted == (hub_world.url,)

    facts = result.facts["provenance"]
    assert facts["publisher"]["org"] == "bartowski" and facts["publisher"]["kind"] == "re-uploader"
    assert [e["repo_id"] for e in facts["lineage"]] == ["acme/tiny-chat", "Qwen/tiny-base"]   # parent first, root last
    assert facts["lineage"][1]["country"] == "CN" and facts["lineage"][1]["license"] == "apache-2.0"
    assert facts["effective_origin"]["org"] == "Qwen" and facts["effective_origin"]["country"] == "CN"
    assert facts["effective_origin"]["resolved"] is True

    assert by_rule(result, "PROVENANCE-NOT-ORIGINATOR")[0].severity == Severity.LOW
    sensitive = by_rule(result, "PROVENANCE-SENSITIVE-ORIGIN")
    assert sensitive and "Qwen/tiny-base" in sensitive[0].evidence
    assert sensitive[0].severity == Severity.MEDIUM     # warns; the policy's require_claims decides the rest
    # acme (the fine-tuner in the middle) is not in the registry, but the root is: no unknown-origin finding for it
    unknown = by_rule(result, "PROVENANCE-ORIGIN-UNKNOWN")
    assert not [f for f in unknown if "lineage root" in f.evidence]


def test_lineage_cycle_is_detected(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://loop/a", Options(endpoint=hub_world.url, token=False))
    ancestors = result.snapshot.ancestors
    assert [a.repo_id for a in ancestors] == ["loop/b", "loop/a"]
    assert ancestors[1].error.startswith("cycle")
    cycle = by_rule(result, "LINEAGE-CYCLE")
    assert cycle and cycle[0].severity == Severity.HIGH
    assert result.facts["provenance"]["effective_origin"]["resolved"] is False


def test_unresolvable_base_model(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://acme/orphan", Options(endpoint=hub_world.url, token=False))
    [ghost] = result.snapshot.ancestors
    assert ghost.repo_id == "ghost/missing-model" and "not found" in ghost.error
    unresolved = by_rule(result, "LINEAGE-UNRESOLVED")
    assert unresolved and "ghost/missing-model" in unresolved[0].evidence
    assert result.facts["provenance"]["effective_origin"]["resolved"] is False


def test_local_folder_lineage_is_unresolved_not_invented(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(card({"license": "mit", "base_model": ["Qwen/Qwen2.5-7B", "not an id!"]}))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}))
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(7))
    result = audit(str(tmp_path))
    assert result.snapshot.hosts_contacted == () and result.snapshot.ancestors == ()
    lineage_facts = result.facts["provenance"]["lineage"]
    assert [e["repo_id"] for e in lineage_facts] == ["Qwen/Qwen2.5-7B", "not an id!", "meta-llama/Llama-3.1-8B"]
    assert lineage_facts[0]["relation"] == "merge" and lineage_facts[0]["country"] == "CN"
    assert lineage_facts[2]["relation"] == "adapter"
    assert all(e["error"] for e in lineage_facts)
    assert len(by_rule(result, "LINEAGE-UNRESOLVED")) == 3
    # no hub, so nothing hub-specific
    assert not [f for f in result.findings if f.rule.startswith(("HUB-", "PROVENANCE-UNPINNED"))]


def test_gguf_base_model_header_is_a_lineage_reference(tmp_path: Path) -> None:
    import gguf
    writer = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    writer.add_uint32("general.base_model.count", 1)
    writer.add_string("general.base_model.0.organization", "Mistralai")
    writer.add_string("general.base_model.0.name", "Tiny")
    writer.add_string("general.base_model.0.repo_url", "https://huggingface.co/mistralai/Tiny-7B")
    writer.add_tensor("w", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    refs = lineage.local_refs(tmp_path, ["m.gguf"])
    assert [(r.repo_id, r.relation, r.source) for r in refs] == [("mistralai/Tiny-7B", "quantized", "m.gguf")]


@pytest.mark.parametrize(("host", "country"), [
    ("hf-mirror.com", "CN"), ("qianwen-res.oss-cn-beijing.aliyuncs.com", "CN"), ("www.modelscope.cn", "CN"),
    ("huggingface.co", "US"), ("127.0.0.1", ""), ("notaliyuncs.com", ""),
    ("114.114.114.114", "CN"), ("8.8.8.8", "US"), ("2400:3200::1", "CN"), ("10.0.0.1", ""),
])
def test_host_country(host: str, country: str) -> None:
    assert provenance.host_country(host) == country


def test_origin_registry_lookup_is_case_insensitive() -> None:
    assert provenance.origin_of("qwen/x")["country"] == "CN"
    assert provenance.origin_of("meta-llama/x")["kind"] == "originator"
    assert provenance.origin_of("TheBloke/x")["kind"] == "re-uploader"
    assert provenance.origin_of("nobody-knows/x")["known"] is False


def _run_scanner(snapshot: Snapshot, policy_settings: dict | None = None) -> tuple[list, dict]:
    from auditor.judge import regions
    inv = inventory.build(snapshot, Options())
    ctx = scanners.ScanContext(snapshot=snapshot, files=tuple(inv.files), options=Options(),
                               regions=regions.of(policy_settings or {}))
    findings = list(provenance.scan(ctx))
    return findings, ctx.facts.to_dict()["provenance"]


def test_route_through_origin_country_infrastructure(tmp_path: Path) -> None:
    """A recorded fetch through hf-mirror.com (CN) of a model whose root is Qwen (CN): the route claim fails."""
    (tmp_path / "config.json").write_text("{}")
    snapshot = Snapshot(root=str(tmp_path), kind="hub", target="hf://someone/derived", repo_id="someone/derived",
                        resolved_revision="a" * 40, endpoint="https://hf-mirror.com",
                        hosts_contacted=("https://hf-mirror.com", "https://cdn.example.net"),
                        ancestors=(Ancestor("Qwen/Qwen2.5-7B", "finetune", 1, "someone/derived", commit="b" * 40),),
                        facts={"revision_kind": "commit"})
    findings, facts = _run_scanner(snapshot)
    rules = {f.rule for f in findings}
    assert "PROVENANCE-ROUTE-ORIGIN" in rules
    assert any(f.rule == "PROVENANCE-OFF-ENDPOINT-HOST" and "cdn.example.net" in f.evidence for f in findings)
    assert facts["route"]["hosts"][0]["host"] == "https://hf-mirror.com"
    assert facts["route"]["hosts"][0]["country"] == "CN" and facts["route"]["hosts"][0]["sensitive"] is True
    assert facts["route"]["hosts"][1]["known"] is False and facts["route"]["hosts"][1]["listed"] is False
    # config.json has no publisher hash although the snapshot came from a hub
    assert "HUB-PUBLISHER-HASH-MISSING" not in rules        # (no publisher listing at all: nothing to compare)


def test_route_through_sensitive_infrastructure_for_other_origins(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    snapshot = Snapshot(root=str(tmp_path), kind="hub", target="hf://meta-llama/x", repo_id="meta-llama/x",
                        resolved_revision="a" * 40, endpoint="https://hf-mirror.com",
                        hosts_contacted=("https://hf-mirror.com",), facts={"revision_kind": "commit"})
    findings, _facts = _run_scanner(snapshot, {"sensitive_origins": ["CN"]})
    rules = {f.rule for f in findings}
    assert "PROVENANCE-ROUTE-SENSITIVE" in rules and "PROVENANCE-ROUTE-ORIGIN" not in rules


def test_signature_valid_with_the_publisher_key(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://acme/signed", Options(endpoint=hub_world.url, token=False,
                                                verify_key=str(hub_world.signing_key)))
    assert result.facts["provenance"]["signature"]["status"] == "valid"
    assert by_rule(result, "SIGNATURE-VALID")
    assert not by_rule(result, "SIGNATURE-INVALID")


def test_signature_invalid_with_another_key(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://acme/signed", Options(endpoint=hub_world.url, token=False,
                                                verify_key=str(hub_world.other_key)))
    assert result.facts["provenance"]["signature"]["status"] == "invalid"
    [bad] = by_rule(result, "SIGNATURE-INVALID")
    assert bad.severity == Severity.CRITICAL and bad.file == "model.sig"
    assert {c.id: c.status.value for c in result.claims}["integrity"] == "refuted"


def test_signature_without_key_or_without_weights_is_not_checked(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://acme/signed", Options(endpoint=hub_world.url, token=False))
    assert result.facts["provenance"]["signature"]["status"] == "not checked"
    assert by_rule(result, "SIGNATURE-NOT-VERIFIED")
    meta = audit("hf://acme/signed", Options(endpoint=hub_world.url, token=False, metadata_only=True,
                                              verify_key=str(hub_world.signing_key)))
    assert meta.facts["provenance"]["signature"]["status"] == "not checked"
    assert "metadata-only" in meta.facts["provenance"]["signature"]["detail"]


def test_signature_over_a_tampered_local_copy(tmp_path: Path, hub_world: HubWorld) -> None:
    """Sign a folder with model-signing, change one byte: the signature no longer verifies."""
    from model_signing import signing
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(9))
    key = Path(str(hub_world.signing_key).replace(".pub.pem", ".key.pem"))
    signing.Config().use_elliptic_key_signer(private_key=str(key)).sign(tmp_path, tmp_path / "model.sig")
    ok = audit(str(tmp_path), Options(verify_key=str(hub_world.signing_key)))
    assert ok.facts["provenance"]["signature"]["status"] == "valid"
    (tmp_path / "config.json").write_text('{"a": 2}')
    bad = audit(str(tmp_path), Options(verify_key=str(hub_world.signing_key)))
    assert bad.facts["provenance"]["signature"]["status"] == "invalid"
    assert "config.json" in by_rule(bad, "SIGNATURE-INVALID")[0].evidence


def test_unsigned_repo_reports_absent(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit(f"hf://acme/tiny-chat@{hub_world.repos['acme/tiny-chat'].head}",
                   Options(endpoint=hub_world.url, token=False))
    assert result.facts["provenance"]["signature"]["status"] == "absent"
    assert by_rule(result, "SIGNATURE-ABSENT")


def test_publisher_hash_missing_and_changed_cache_file(hub_world: HubWorld, hub_cache: Path) -> None:
    """A file added to (or altered in) the cached snapshot is caught on the next audit."""
    target = f"hf://acme/tiny-chat@{hub_world.repos['acme/tiny-chat'].head}"
    first = audit(target, Options(endpoint=hub_world.url, token=False))
    root = Path(first.snapshot.root)
    (root / "extra.txt").write_text("not from the publisher\n")
    blob = (root / "config.json").resolve()
    text = blob.read_text()
    blob.write_text(text[:-1] + ("]" if text[-1] != "]" else "}"))   # same size: the cached blob is reused
    again = audit(target, Options(endpoint=hub_world.url, token=False))
    assert [f.file for f in by_rule(again, "HUB-PUBLISHER-HASH-MISSING")] == ["extra.txt"]
    assert [f.file for f in by_rule(again, "HUB-HASH-MISMATCH")] == ["config.json"]


# --- certificate-based model-signing (self-made CA -> code-signing leaf), verified offline -------

def pem(cert: x509.Certificate) -> bytes: return cert.public_bytes(serialization.Encoding.PEM)
def make_ca_and_leaf(folder: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fixture CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "publisher")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                           data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                           encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("publisher@example.invalid")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(pem(ca))
    (folder / "leaf.pem").write_bytes(pem(leaf))
    (folder / "leaf.key").write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def test_certificate_signature_valid_with_its_ca_and_invalid_with_another(tmp_path: Path) -> None:
    from model_signing import signing
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    make_ca_and_leaf(ours)
    make_ca_and_leaf(theirs)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(safetensors_bytes(11))
    signing.Config().use_certificate_signer(private_key=str(ours / "leaf.key"), signing_certificate=str(ours / "leaf.pem"),
                                            certificate_chain=[str(ours / "ca.pem")]).sign(model, model / "model.sig")
    ok = audit(str(model), Options(verify_key=str(ours / "ca.pem")))
    assert ok.facts["provenance"]["signature"]["status"] == "valid"
    assert "certificate" in ok.facts["provenance"]["signature"]["detail"]
    bad = audit(str(model), Options(verify_key=str(theirs / "ca.pem")))
    assert bad.facts["provenance"]["signature"]["status"] == "invalid"
    assert by_rule(bad, "SIGNATURE-INVALID")


def test_scan_cli_passes_verify_key(hub_world: HubWorld, hub_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from auditor.cli import main
    with pytest.raises(SystemExit):
        main(["scan", "hf://acme/signed", "--endpoint", hub_world.url, "--verify-key", str(hub_world.signing_key), "-q"])
    report = json.loads(capsys.readouterr().out)
    assert report["facts"]["provenance"]["signature"]["status"] == "valid"
    assert report["snapshot"]["endpoint"] == hub_world.url
    assert "token" not in json.dumps(report["snapshot"]).lower()


def test_lineage_depth_limit(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://deep/m0", Options(endpoint=hub_world.url, token=False))
    ancestors = result.snapshot.ancestors
    assert [a.repo_id for a in ancestors[:8]] == [f"deep/m{i}" for i in range(1, 9)]
    assert all(not a.error for a in ancestors[:8])
    assert ancestors[8].repo_id == "deep/m9" and ancestors[8].error.startswith("depth limit")
    assert [f.rule for f in result.findings if f.rule.startswith("LINEAGE-")] == ["LINEAGE-DEPTH-LIMIT"]


def test_public_hub_cdn_is_not_off_endpoint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    snapshot = Snapshot(root=str(tmp_path), kind="hub", target="hf://meta-llama/x", repo_id="meta-llama/x",
                        resolved_revision="a" * 40, endpoint="https://huggingface.co",
                        hosts_contacted=("https://huggingface.co", "https://cas-bridge.xethub.hf.co",
                                         "https://cdn-lfs.hf.co", "https://evil.example"),
                        facts={"revision_kind": "commit"})
    findings, facts = _run_scanner(snapshot)
    off = [f.evidence.split()[0] for f in findings if f.rule == "PROVENANCE-OFF-ENDPOINT-HOST"]
    assert off == ["https://evil.example"]
    assert [h["host"] for h in facts["route"]["hosts"]] == list(snapshot.hosts_contacted)


# --- signatures made at test time by model-signing, verified as they were made ----------------

def _signed_folder(tmp_path: Path, name: str, hashing_config=None, extra: dict[str, bytes] | None = None):  # type: ignore[no-untyped-def]
    """A small model folder signed by model-signing with a fresh EC key: (folder, public key, private key)."""
    from model_signing import signing
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / f"{name}.key.pem", tmp_path / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["TinyModel"]}))
    (folder / "model.safetensors").write_bytes(safetensors_bytes(7, (64, 64)))
    (folder / "README.md").write_text(card({"license": "mit"}))
    config = signing.Config().use_elliptic_key_signer(private_key=str(private))
    if hashing_config is not None:
        config.set_hashing_config(hashing_config)
    config.sign(folder, folder / "model.sig")
    for rel, data in (extra or {}).items():
        (folder / rel).write_bytes(data)
    return folder, public, private


def _signature_of(folder: Path, key: Path) -> tuple[str, str, list]:  # type: ignore[type-arg]
    result = audit(str(folder), Options(verify_key=str(key)))
    sig = result.facts["provenance"]["signature"]
    return sig["status"], sig["detail"], [f.rule for f in result.findings if f.rule.startswith("SIGNATURE-")]


@pytest.mark.parametrize("how", ["sha256-files", "blake2-files", "sha256-shards", "blake2-small-shards"])
def test_valid_signatures_of_every_hashing_kind_verify(tmp_path: Path, how: str) -> None:
    from model_signing import hashing
    algorithm, method = how.split("-")[0], how.split("-")[-1]
    config = hashing.Config()
    if method == "files":
        config.use_file_serialization(hashing_algorithm=algorithm)  # type: ignore[arg-type]
    else:
        config.use_shard_serialization(hashing_algorithm=algorithm,  # type: ignore[arg-type]
                                       shard_size=4096 if "small" in how else 1_000_000_000)
    folder, public, _private = _signed_folder(tmp_path, how, config)
    status, detail, found = _signature_of(folder, public)
    assert (status, found) == ("valid", ["SIGNATURE-VALID"]), detail
    assert ("blake2" in detail) == (algorithm == "blake2") and (method in detail)
    (folder / "model.safetensors").write_bytes(safetensors_bytes(8, (64, 64)))      # changed after signing
    status, detail, found = _signature_of(folder, public)
    assert (status, found) == ("invalid", ["SIGNATURE-INVALID"]) and "model.safetensors" in detail


def test_an_extra_unsigned_sig_file_is_not_ignored(tmp_path: Path) -> None:
    folder, public, _private = _signed_folder(tmp_path, "extra", extra={"zz-extra.sig": b"not a signature\n"})
    status, detail, found = _signature_of(folder, public)
    assert status == "invalid" and "zz-extra.sig" in detail and found == ["SIGNATURE-INVALID"]


def test_a_second_valid_signature_is_accounted_for(tmp_path: Path) -> None:
    from model_signing import signing
    folder, public, private = _signed_folder(tmp_path, "two")
    staging = tmp_path / "two-copy"
    staging.mkdir()
    for name in ("config.json", "model.safetensors", "README.md"):
        (staging / name).write_bytes((folder / name).read_bytes())
    signing.Config().use_elliptic_key_signer(private_key=str(private)).sign(staging, folder / "model.sigstore.json")
    status, detail, found = _signature_of(folder, public)
    assert status == "valid" and "also valid: model.sigstore.json" in detail and found == ["SIGNATURE-VALID"]


def test_a_signature_by_another_key_stays_invalid(tmp_path: Path) -> None:
    folder, _public, _private = _signed_folder(tmp_path, "mine")
    _other, stranger, _p = _signed_folder(tmp_path, "stranger")
    status, _detail, found = _signature_of(folder, stranger)
    assert status == "invalid" and found == ["SIGNATURE-INVALID"]
