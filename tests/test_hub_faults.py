"""The hub source against the real olah mirror behind a fault-injecting proxy (tests/faultproxy.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from faultproxy import FaultProxy, json_rewrite, redirect_files, tamper
from hubfixtures import HubWorld

from auditor.cli import main
from auditor.model import Options
from auditor.pipeline import audit

pytest_plugins = ["hub_plugin"]


def rules_of(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.rule for f in result.findings}


def claim(result, cid: str) -> str:  # type: ignore[no-untyped-def]
    return next(c.status.value for c in result.claims if c.id == cid)


def test_lying_card_data_does_not_change_the_origin(hub_world: HubWorld, hub_cache: Path) -> None:
    def lie(data):  # type: ignore[no-untyped-def]
        data.setdefault("cardData", {})["base_model"] = "meta-llama/Llama-3.1-8B"
        return data
    fault = json_rewrite(lambda p: p.startswith("/api/models/acme/tiny-chat/revision/"), lie)
    with FaultProxy(hub_world.url, fault) as proxy:
        result = audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
    origin = result.facts["provenance"]["effective_origin"]
    assert origin["country"] == "CN" and origin["org"] == "Qwen"          # from the verified README's lineage
    assert [a.repo_id for a in result.snapshot.ancestors] == ["Qwen/tiny-base"]
    mismatch = [f for f in result.findings if f.rule == "HUB-CARD-MISMATCH"]
    assert mismatch and "meta-llama/Llama-3.1-8B" in mismatch[0].evidence and "Qwen/tiny-base" in mismatch[0].evidence


def test_a_file_dropped_from_the_tree_listing_is_a_finding(hub_world: HubWorld, hub_cache: Path) -> None:
    fault = json_rewrite(lambda p: "/tree/" in p, lambda items: [i for i in items if i.get("path") != "config.json"])
    with FaultProxy(hub_world.url, fault) as proxy:
        result = audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False))
    dropped = [f for f in result.findings if f.rule == "HUB-LISTING-INCOMPLETE"]
    assert [f.file for f in dropped] == ["config.json"]
    assert claim(result, "integrity") != "supported"


def test_an_ancestors_tampered_license_is_not_used(hub_world: HubWorld, hub_cache: Path) -> None:
    with FaultProxy(hub_world.url, tamper("/LICENSE")) as proxy:
        result = audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
    [base] = result.snapshot.ancestors
    assert base.repo_id == "Qwen/tiny-base" and "LICENSE" not in base.license_texts
    notes = [f.evidence for f in result.findings if f.rule == "LINEAGE-UNVERIFIED"]
    assert any("Qwen/tiny-base" in n and "LICENSE" in n for n in notes)


def test_redirect_to_an_unlisted_host_leaves_the_route_not_assessed(hub_world: HubWorld, hub_cache: Path) -> None:
    other = hub_world.url.replace("127.0.0.1", "localhost")
    with FaultProxy(hub_world.url, redirect_files(other)) as proxy:
        result = audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False))
    assert other in result.snapshot.hosts_contacted
    assert "PROVENANCE-OFF-ENDPOINT-HOST" in rules_of(result)
    route = next(c for c in result.claims if c.id == "route")
    assert route.status.value == "not assessed" and "localhost" in route.reason


def test_route_supported_through_the_users_own_mirror_for_a_known_origin(hub_world: HubWorld,
                                                                         hub_cache: Path) -> None:
    result = audit("hf://Qwen/tiny-base", Options(endpoint=hub_world.url, token=False))
    assert claim(result, "route") == "supported"
    orphan = audit("hf://acme/orphan", Options(endpoint=hub_world.url, token=False))   # origin unknown
    assert claim(orphan, "route") == "not assessed"


def test_lock_of_tampered_bytes_refuses_and_evicts_the_blob(hub_world: HubWorld, hub_cache: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "auditor.lock"
    with pytest.raises(SystemExit) as exit_info:
        main(["lock", "hf://acme/tampered", "--endpoint", hub_world.url, "-o", str(lock), "-q"])
    assert exit_info.value.code == 1
    assert not lock.exists()
    assert "failed verification" in capsys.readouterr().err
    blobs = list(hub_cache.rglob("models--acme--tampered/blobs/*"))
    from hashlib import sha256
    good = sha256(hub_world.repos["acme/tampered"].lfs["model.safetensors"]).hexdigest()
    assert all(b.name != good for b in blobs)                     # the mismatched blob left the cache


def test_metadata_only_keeps_lineage_that_lives_only_in_a_gguf_header(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://acme/tiny-gguf", Options(endpoint=hub_world.url, token=False, metadata_only=True))
    assert "tiny.gguf" not in {f.path for f in result.files}
    assert [a.repo_id for a in result.snapshot.ancestors] == ["Qwen/tiny-base"]
    assert result.facts["provenance"]["effective_origin"]["country"] == "CN"
    assert any("ranged header" in f.evidence for f in result.findings if f.rule == "LINEAGE-UNVERIFIED")


def test_metadata_only_lists_the_weights_in_one_finding(hub_world: HubWorld, hub_cache: Path) -> None:
    result = audit("hf://acme/sharded", Options(endpoint=hub_world.url, token=False, metadata_only=True))
    [one] = [f for f in result.findings if f.rule == "HUB-METADATA-ONLY"]
    assert "50 file(s)" in one.evidence and "model-00050-of-00050.safetensors" in one.evidence
    assert not [f for f in result.findings if f.rule in ("HUB-FILE-MISSING", "SHARDS-MISSING-SHARD")]


def test_metadata_only_still_reports_a_shard_that_is_really_missing(hub_world: HubWorld, hub_cache: Path) -> None:
    """The index names a shard the publisher's listing does not have: that one is a finding of its own."""
    def drop(items):  # type: ignore[no-untyped-def]
        return [i for i in items if i.get("path") != "model-00007-of-00050.safetensors"]
    with FaultProxy(hub_world.url, json_rewrite(lambda p: "/tree/" in p, drop)) as proxy:
        result = audit("hf://acme/sharded", Options(endpoint=proxy.url, token=False, metadata_only=True))
    [missing] = [f for f in result.findings if f.rule == "SHARDS-MISSING-SHARD"]
    assert "model-00007-of-00050.safetensors" in missing.evidence
    [one] = [f for f in result.findings if f.rule == "HUB-METADATA-ONLY"]
    assert "49 file(s)" in one.evidence


def test_hf_token_is_not_sent_over_plain_http(hub_world: HubWorld, hub_cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_test")
    with FaultProxy(hub_world.url) as proxy:
        audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url))
    assert proxy.seen and not [s for s in proxy.seen if s[2]]
    from auditor.errors import AuditorError
    with pytest.raises(AuditorError, match="plain HTTP"):
        audit("hf://Qwen/tiny-base", Options(endpoint=hub_world.url, token="hf_explicit"))


def test_local_path_with_at_sign_is_local_and_single_names_are_hub(tmp_path: Path) -> None:
    from auditor import sources
    folder = tmp_path / "Yi@v2.1"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not sources.is_hub_target(str(folder))
    assert sources.is_hub_target("gpt2") and sources.is_hub_target("https://huggingface.co/org/name/tree/v1")
    from auditor.sources import hub
    assert hub.parse_target("https://huggingface.co/Qwen/Qwen2-7B/tree/v1.0") == ("Qwen/Qwen2-7B", "v1.0")
    assert hub.parse_target("gpt2@abc") == ("gpt2", "abc")
    from auditor.errors import AuditorError
    with pytest.raises(AuditorError, match="not supported"):
        sources.open_snapshot("modelscope://qwen/Qwen2-7B", Options())
