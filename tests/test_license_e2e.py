"""License scanner end to end: file metadata written by the real libraries, and a three-level lineage
fetched through a real Hub mirror (olah) by the hub source."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from license_support import make_model

from auditor.model import Options, Severity
from auditor.pipeline import audit

RESEARCH_LICENSE = (
    "Qwen RESEARCH LICENSE AGREEMENT\n\nRelease Date: January 10, 2026\n\n"
    "Licensor: Hangzhou Tongyi Laboratory Technology Co., Ltd. (with Alibaba Cloud).\n"
    "You may use the Materials for non-commercial research only. A model built with them shows "
    "\"Built with Qwen\". This Agreement is governed by the laws of China, without regard to conflict rules.\n")


def _rules(result, scanner: str = "license") -> dict[str, list]:  # type: ignore[no-untyped-def]
    out: dict[str, list] = {}
    for f in result.findings:
        if f.scanner == scanner:
            out.setdefault(f.rule, []).append(f)
    return out


def test_safetensors_metadata_license_conflicting_with_the_card(tmp_path: Path) -> None:
    from safetensors.numpy import save_file
    folder = make_model(tmp_path / "m", {"license": "apache-2.0"})
    save_file({"w": np.zeros((4, 4), dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "pt", "license": "llama3.1"})
    result = audit(str(folder), Options(engines=("auditor",)))
    found = _rules(result)
    conflict = found["LICENSE-CONFLICT"]
    assert conflict[0].file == "model.safetensors" and "Llama 3.1" in conflict[0].evidence
    assert conflict[0].severity == Severity.HIGH
    assert result.facts["license"]["model"]["id"] == "llama3.1"        # the more restrictive binds
    assert "LICENSE-NAMING-DUTY" in found
    claim = next(c for c in result.claims if c.id == "license")
    assert claim.status.value == "supported"    # no registration/reporting/remote term in either


def _write_gguf(path: Path, strings: dict[str, str]) -> None:
    """A small real GGUF file (gguf.GGUFWriter) with these string metadata keys."""
    import gguf
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in strings.items():
        writer.add_string(key, value)
    writer.add_tensor("w", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_general_license_is_read(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "g", None)
    _write_gguf(folder / "model.gguf", {"general.license": "other", "general.license.name": "deepseek", "general.name": "tiny"})
    result = audit(str(folder), Options(engines=("auditor",)))
    sources = {s["where"]: s["license_id"] for s in result.facts["license"]["model"]["sources"]}
    assert sources == {"model.gguf: general.license": "", "model.gguf: general.license.name": "deepseek-license-1.0"}
    assert result.facts["license"]["model"]["id"] == "deepseek-license-1.0"
    found = _rules(result)
    assert "LICENSE-UNKNOWN" not in found and "LICENSE-REMOTE-RESTRICTION" in found


def test_gguf_other_without_a_name_is_unknown(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "g", None)
    _write_gguf(folder / "model.gguf", {"general.license": "other"})
    result = audit(str(folder), Options(engines=("auditor",)))
    # "other" alone names no license: it is unknown, not a pass
    assert [f.file for f in _rules(result)["LICENSE-UNKNOWN"]] == ["model.gguf"]


def test_gguf_general_license_id_resolves(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "g", None)
    _write_gguf(folder / "model.gguf", {"general.license": "Tencent-Hunyuan-Community"})
    path = tmp_path / "policy.yaml"
    path.write_text("name: eu\nfail_on: high\nwarn_on: medium\nuser_region: FR\n")
    result = audit(str(folder), Options(engines=("auditor",), policy=str(path)))
    found = _rules(result)
    assert result.facts["license"]["model"]["id"] == "tencent-hunyuan-community"
    assert found["LICENSE-TERRITORY-EXCLUSION"][0].severity == Severity.HIGH
    assert result.verdict.decision == "fail"


# ------------------------------------------------------------------------------------------------
# A real Hub mirror serving base (research license) -> fine-tune (says apache) -> quantized (says apache).

@pytest.fixture(scope="module")
def license_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    hubfixtures = pytest.importorskip("hubfixtures", reason="the hub colleague's mirror fixtures are absent")
    try:
        import olah  # noqa: F401
    except ImportError:
        pytest.skip("olah is not installed")
    workdir = tmp_path_factory.mktemp("licworld")
    olah_server = hubfixtures.Olah(workdir)
    builder = hubfixtures.RepoBuilder(olah_server.mirrors)
    card, weights = hubfixtures.card, hubfixtures.safetensors_bytes
    base = builder.create("Qwen/lic-base")
    builder.commit(base, {"README.md": card({"license": "other", "license_name": "qwen-research"}),
                          "LICENSE": RESEARCH_LICENSE, "config.json": "{}"}, {"model.safetensors": weights(10)})
    tune = builder.create("acme/lic-chat")
    builder.commit(tune, {"README.md": card({"license": "apache-2.0", "base_model": "Qwen/lic-base",
                                             "base_model_relation": "finetune"}), "config.json": "{}"},
                   {"model.safetensors": weights(11)})
    quant = builder.create("bartowski/lic-chat-GGUF")
    builder.commit(quant, {"README.md": card({"license": "apache-2.0", "base_model": "acme/lic-chat",
                                              "base_model_relation": "quantized"})},
                   {"lic-chat.safetensors": weights(12)})
    olah_server.start("Qwen/lic-base")
    try:
        yield olah_server.url
    finally:
        olah_server.stop()


def test_three_level_lineage_through_the_hub_mirror(license_world: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = audit("hf://bartowski/lic-chat-GGUF", Options(endpoint=license_world, token=False,
                                                            engines=("auditor",)))
    facts = result.facts["license"]
    assert facts["model"]["id"] == "apache-2.0"
    assert [(e["repo_id"], e["license_id"]) for e in facts["lineage"]] == [
        ("acme/lic-chat", "apache-2.0"), ("Qwen/lic-base", "qwen-research")]
    found = _rules(result)
    non_commercial = found["LICENSE-NON-COMMERCIAL"]
    assert non_commercial[0].severity == Severity.HIGH and "Qwen/lic-base" in non_commercial[0].location
    assert "LICENSE-NAMING-DUTY" in found and "LICENSE-LINEAGE-UNRESOLVED" not in found
    law = found["LICENSE-GOVERNING-LAW"][0]
    assert "China" in law.evidence and "Qwen/lic-base" in law.location
    assert any(line.startswith("Commercial use:") and "Qwen/lic-base" in line for line in facts["summary"])
    assert result.verdict.decision == "fail"
