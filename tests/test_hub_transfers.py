"""Transfers against the real olah mirror behind the fault proxy (tests/faultproxy.py): the Hugging Face
cache reused, offline audits, HF_TOKEN over HTTPS only, resumed downloads, timeouts, deadlines,
pagination caps and retries."""
from __future__ import annotations

import time
from hashlib import sha256
from pathlib import Path

import pytest
from faultproxy import FaultProxy, cut_once, endless_pages, fail_once, make_certificate, redirect_files, stall
from hubfixtures import HubWorld

from auditor.errors import AuditorError
from auditor.model import Options
from auditor.pipeline import audit

pytest_plugins = ["hub_plugin"]


def claim(result, cid: str) -> str:  # type: ignore[no-untyped-def]
    return next(c.status.value for c in result.claims if c.id == cid)


def file_gets(proxy: FaultProxy, suffix: str = "") -> list[str]:
    return [p for m, p, _a in proxy.seen if m == "GET" and "/resolve/" in p and p.split("?")[0].endswith(suffix)]


@pytest.fixture()
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """huggingface_hub's own cache (HF_HUB_CACHE), with no auditor cache configured."""
    cache = tmp_path / "hf-cache"
    monkeypatch.delenv("AUDITOR_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_a_warm_hugging_face_cache_is_reused_without_a_request_for_cached_files(
        hub_world: HubWorld, hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import snapshot_download
    with FaultProxy(hub_world.url) as proxy:
        monkeypatch.setenv("HF_ENDPOINT", proxy.url)      # the endpoint the user's cache came from
        snapshot_download("Qwen/tiny-base", cache_dir=str(hf_cache), endpoint=proxy.url, token=False)
        assert file_gets(proxy)                             # the user's own download went through the proxy
        proxy.seen.clear()
        result = audit("hf://Qwen/tiny-base", Options(token=False))
    assert file_gets(proxy) == []                           # every file came from the warm cache
    assert [m for m, p, _a in proxy.seen if "/api/" in p]   # the listing was still asked for (to verify)
    assert Path(result.snapshot.root).is_relative_to(hf_cache)
    assert claim(result, "integrity") == "supported"


def test_offline_audits_what_the_cache_holds_and_says_what_it_could_not_verify(
        hub_world: HubWorld, hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FaultProxy(hub_world.url) as proxy:
        online = audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
    proxy_url = proxy.url                                  # the proxy is gone now: any request would fail
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = audit("hf://acme/tiny-chat", Options(endpoint=proxy_url, token=False))
    assert result.snapshot.facts["offline"] is True and result.snapshot.hosts_contacted == ()
    assert result.snapshot.resolved_revision == online.snapshot.resolved_revision
    assert {f.path for f in result.files} == {f.path for f in online.files}
    assert result.facts["integrity"]["verification"]["mismatched"] == 0
    assert set(result.snapshot.publisher_hashes) == set(online.snapshot.publisher_hashes)   # the recorded tree
    notes = " ".join(f.evidence for f in result.findings if f.rule == "LINEAGE-UNVERIFIED")
    assert "offline" in notes and "lineage" in notes


def test_hf_token_reaches_a_configured_https_mirror_but_not_a_redirect_host(
        hub_world: HubWorld, hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)             # the client trusts the test certificate
    monkeypatch.setenv("HF_TOKEN", "hf_token_for_the_mirror")
    with FaultProxy(hub_world.url, tls=(cert, key), host="localhost") as other, \
            FaultProxy(hub_world.url, redirect_files(other.url), tls=(cert, key)) as mirror:
        monkeypatch.setenv("HF_ENDPOINT", mirror.url)
        result = audit("hf://Qwen/tiny-base", Options())
    assert mirror.url.startswith("https://127.0.0.1:") and other.url.startswith("https://localhost:")
    api = [auth for m, p, auth in mirror.seen if p.startswith("/api/")]
    assert api and all(auth == "Bearer hf_token_for_the_mirror" for auth in api)
    assert other.seen and not [s for s in other.seen if s[2]]          # the redirect target got no token
    assert other.url in result.snapshot.hosts_contacted
    assert claim(result, "integrity") == "supported"


def test_hf_token_is_not_sent_to_a_plain_http_mirror(hub_world: HubWorld, hub_cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_token_for_the_mirror")
    with FaultProxy(hub_world.url) as mirror:
        monkeypatch.setenv("HF_ENDPOINT", mirror.url)
        audit("hf://Qwen/tiny-base", Options())
    assert mirror.seen and not [s for s in mirror.seen if s[2]]


def test_an_interrupted_download_is_kept_and_resumed_with_a_range_request(hub_world: HubWorld,
                                                                          hub_cache: Path) -> None:
    data = hub_world.repos["acme/tiny-chat"].lfs["model.safetensors"]
    oid = sha256(data).hexdigest()
    # run 1: the body stops half way and the server then fails: the fetch ends, the partial stays
    with FaultProxy(hub_world.url, cut_once("model.safetensors", then_status=503)) as proxy:
        with pytest.raises(AuditorError, match="HTTP 503"):
            audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
        [partial] = hub_cache.rglob(f"blobs/{oid}.incomplete")
        assert partial.stat().st_size == len(data) // 2
        assert not list(hub_cache.rglob(f"blobs/{oid}"))               # no half file placed as a blob
        # run 2 (same endpoint, the server healthy again): it resumes from where it stopped, and the
        # whole file is verified before it is placed
        proxy.fault, proxy.requests[:] = (lambda method, path, answer: answer), []
        result = audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
    ranges = [h.get("Range") for m, p, h in proxy.requests if "/resolve/" in p and p.endswith("model.safetensors")]
    assert ranges == [f"bytes={len(data) // 2}-"]
    [blob] = hub_cache.rglob(f"blobs/{oid}")
    assert blob.read_bytes() == data and not partial.exists()
    assert claim(result, "integrity") == "supported"


def test_a_body_cut_mid_way_resumes_in_the_same_fetch(hub_world: HubWorld, hub_cache: Path) -> None:
    with FaultProxy(hub_world.url, cut_once("model.safetensors")) as proxy:
        result = audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
    ranges = [h.get("Range") for m, p, h in proxy.requests if "/resolve/" in p and p.endswith("model.safetensors")]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and len(ranges) == 2
    assert claim(result, "integrity") == "supported"


def test_a_resumed_partial_that_does_not_match_is_fetched_again_from_the_start(hub_world: HubWorld,
                                                                             hub_cache: Path) -> None:
    data = hub_world.repos["acme/tiny-chat"].lfs["model.safetensors"]
    oid = sha256(data).hexdigest()
    with FaultProxy(hub_world.url, cut_once("model.safetensors", then_status=503)) as proxy:
        with pytest.raises(AuditorError):
            audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
        [partial] = hub_cache.rglob(f"blobs/{oid}.incomplete")
        partial.write_bytes(b"\0" * partial.stat().st_size)           # a corrupt partial (disk, another tool)
        proxy.fault, proxy.requests[:] = (lambda method, path, answer: answer), []
        result = audit("hf://acme/tiny-chat", Options(endpoint=proxy.url, token=False))
    ranges = [h.get("Range") for m, p, h in proxy.requests if "/resolve/" in p and p.endswith("model.safetensors")]
    assert ranges == [f"bytes={len(data) // 2}-", None]
    assert claim(result, "integrity") == "supported"
    assert next(hub_cache.rglob(f"blobs/{oid}")).read_bytes() == data


def test_a_transient_500_on_a_download_is_retried(hub_world: HubWorld, hub_cache: Path) -> None:
    with FaultProxy(hub_world.url, fail_once("model.safetensors")) as proxy:
        result = audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False))
    assert len(file_gets(proxy, "model.safetensors")) == 2
    assert claim(result, "integrity") == "supported"


def test_a_download_that_keeps_failing_stops_after_the_policys_attempts(hub_world: HubWorld,
                                                                        hub_cache: Path) -> None:
    with FaultProxy(hub_world.url, fail_once("model.safetensors", times=100)) as proxy:
        with pytest.raises(AuditorError, match=r"HTTP 500 \(3 attempt\(s\) in"):
            audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False))
    assert len(file_gets(proxy, "model.safetensors")) == 3


def test_a_stalled_download_is_bounded_by_the_timeout(hub_world: HubWorld, hub_cache: Path) -> None:
    with FaultProxy(hub_world.url, stall("model.safetensors", 30)) as proxy:
        started = time.monotonic()
        with pytest.raises(AuditorError) as error:
            audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False, timeout=1))
        elapsed = time.monotonic() - started
    assert "sent nothing for 1 s" in str(error.value) and "attempt(s)" in str(error.value)
    assert len(file_gets(proxy, "model.safetensors")) == 3           # the policy's attempts, not 5 x 30 s
    assert elapsed < 25                                              # far from the 30 s stall of even one try


def test_the_overall_deadline_stops_a_fetch(hub_world: HubWorld, hub_cache: Path) -> None:
    with FaultProxy(hub_world.url, stall("model.safetensors", 30)) as proxy:
        with pytest.raises(AuditorError, match="overall deadline of 2 s"):
            audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False, deadline=2))
    assert len(file_gets(proxy, "model.safetensors")) == 1


def test_endless_pagination_stops_at_the_page_cap(hub_world: HubWorld, hub_cache: Path) -> None:
    from auditor import rules
    cap = int(rules.load("hub.yaml")["listing_max_pages"])
    with FaultProxy(hub_world.url, endless_pages()) as proxy:
        with pytest.raises(AuditorError, match=f"did not end after {cap} page"):
            audit("hf://Qwen/tiny-base", Options(endpoint=proxy.url, token=False))
    pages = [p for m, p, _a in proxy.seen if "/tree/" in p]
    assert len(pages) == cap
    assert not file_gets(proxy)                                      # nothing downloaded from a broken listing


def test_download_progress_reports_bytes_per_file_and_overall(hub_world: HubWorld, hub_cache: Path) -> None:
    from auditor.sources import hub
    events: list[tuple[str, int, int, int, int]] = []
    with hub.reporting(lambda *event: events.append(event)):
        result = audit("hf://acme/sharded", Options(endpoint=hub_world.url, token=False))
    sizes = {p: h["size"] for p, h in result.snapshot.publisher_hashes.items()}
    finals = {path: (done, size) for path, done, size, _d, _t in events}
    assert finals.keys() == sizes.keys()
    assert all(done == size == sizes[path] for path, (done, size) in finals.items())
    assert {total for *_x, total in events} == {sum(sizes.values())}
    assert max(d for *_x, d, _t in events) == sum(sizes.values())


def test_ctrl_c_stops_a_fetch_promptly_and_keeps_the_cache_consistent(hub_world: HubWorld, hub_cache: Path,
                                                                      tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    data = hub_world.repos["acme/tiny-chat"].lfs["model.safetensors"]
    oid = sha256(data).hexdigest()
    with FaultProxy(hub_world.url, stall("model.safetensors", 60, after_half=True)) as proxy:
        child = subprocess.Popen(
            [sys.executable, "-c", "from auditor.cli import main; main()", "fetch", "hf://acme/tiny-chat",
             "--endpoint", proxy.url, "--to", str(tmp_path / "placed"), "-q"],
            cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "AUDITOR_CACHE": str(hub_cache)},
            stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not [
                    p for p in hub_cache.rglob(f"blobs/{oid}.incomplete") if p.stat().st_size == len(data) // 2]:
                time.sleep(0.1)
            child.send_signal(signal.SIGINT)                  # the download is stalled half way
            sent = time.monotonic()
            _out, err = child.communicate(timeout=30)
            stopped_after = time.monotonic() - sent
        finally:
            child.kill()
    assert child.returncode == 130 and ("interrupted" in err or "aborted" in err), err
    assert stopped_after < 10                                  # not the 60 s the file in flight would take
    [partial] = hub_cache.rglob(f"blobs/{oid}.incomplete")     # kept for a resume
    assert partial.stat().st_size == len(data) // 2
    assert not list(hub_cache.rglob(f"blobs/{oid}")) and not (tmp_path / "placed").exists()
