"""Origin attribution on local folders built from the real license texts and from configs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hubfixtures import card, safetensors_bytes

from auditor.model import Options
from auditor.pipeline import audit

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "licenses"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus/licenses")

EXPECTED = {
    "QwenLM__Qwen__Tongyi_Qianwen_LICENSE_AGREEMENT": "CN", "deepseek-ai__DeepSeek-V3__LICENSE-MODEL": "CN",
    "MoonshotAI__Kimi-K2__LICENSE": "CN", "MiniMax-AI__MiniMax-01__LICENSE-MODEL": "CN",
    "THUDM__ChatGLM3__MODEL_LICENSE": "CN", "01-ai__Yi__MODEL_LICENSE_AGREEMENT.v2.1@90fe567.txt": "CN",
    "Tencent-Hunyuan__Hunyuan-A13B__LICENSE": "CN", "LG-AI-EXAONE__EXAONE-3.5__LICENSE": "KR",
    "meta-llama__llama-models__models__llama3_1__LICENSE": "US",
    "meta-llama__llama-models__models__llama2__LICENSE": "US",
}


def origin(result) -> dict:  # type: ignore[no-untyped-def]
    return result.facts["provenance"]["effective_origin"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared license corpus not present")
@pytest.mark.parametrize(("name", "country"), sorted(EXPECTED.items()))
def test_licensor_in_a_real_license_text_names_the_origin(tmp_path: Path, name: str, country: str) -> None:
    (tmp_path / "LICENSE").write_bytes((CORPUS / name).read_bytes())
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(1))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    assert origin(result)["country"] == country
    assert any(s["kind"] == "license-licensor" for s in origin(result)["signals"])


@pytest.mark.parametrize(("name_or_path", "country"), [("Qwen/Qwen2.5-7B-Instruct", "CN"),
                                                       ("meta-llama/Llama-3.1-8B", "US"),
                                                       ("mistralai/Mistral-7B-v0.3", "FR")])
def test_name_or_path_in_config_names_the_origin(tmp_path: Path, name_or_path: str, country: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": name_or_path}))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    assert origin(result)["country"] == country and origin(result)["source"] == "config.json _name_or_path"


def test_us_quantizers_copy_of_a_cn_model_is_cn(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(card({"license": "apache-2.0", "base_model": "Qwen/Qwen3-8B"}))
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(2))
    result = audit(str(tmp_path), Options(engines=("auditor",), repo_id="unsloth/Qwen3-8B"))
    assert origin(result)["country"] == "CN"
    assert result.facts["provenance"]["publisher"]["country"] == "US"


def test_conflicting_signals_are_a_finding_naming_both(tmp_path: Path) -> None:
    (tmp_path / "LICENSE").write_text("Copyright (c) 2024 Meta Platforms, Inc.\n")
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "deepseek-ai/DeepSeek-V3"}))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    [conflict] = [f for f in result.findings if f.rule == "PROVENANCE-ORIGIN-CONFLICT"]
    assert "Meta Platforms" in conflict.evidence and "deepseek-ai" in conflict.evidence
    assert origin(result)["country"] == "US"          # the license licensor is the stronger signal


def test_no_direct_connection_fails_a_local_cn_copy_and_passes_no_unknown_origin(tmp_path: Path) -> None:
    cn = tmp_path / "cn"
    cn.mkdir()
    (cn / "config.json").write_text(json.dumps({"_name_or_path": "Qwen/Qwen2-7B"}))
    (cn / "model.safetensors").write_bytes(safetensors_bytes(3))
    assert audit(str(cn), Options(policy="no-direct-connection", engines=("auditor",))).verdict.decision == "fail"
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "model.safetensors").write_bytes(safetensors_bytes(4))
    verdict = audit(str(unknown), Options(policy="no-direct-connection", engines=("auditor",))).verdict
    assert verdict.decision != "pass"


def test_readme_symlinked_out_of_the_folder_names_no_base_model(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text(card({"base_model": "Qwen/Qwen2-7B"}))
    model = tmp_path / "model"
    model.mkdir()
    os.symlink(outside, model / "README.md")
    (model / "model.safetensors").write_bytes(safetensors_bytes(5))
    result = audit(str(model), Options(engines=("auditor",)))
    assert "README.md" not in {f.path for f in result.files}
    assert result.facts["provenance"]["lineage"] == []
    assert origin(result)["country"] == ""


MIT_HEADER = "# Copyright (c) Microsoft Corporation.\n# Licensed under the MIT License.\n"
DEEPSEEK_CONFIG = json.dumps({"_name_or_path": "deepseek-ai/DeepSeek-V3"})


def _code_copyright(result) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(s["kind"], s["strength"]) for s in origin(result)["signals"] if s["kind"].startswith("code-copyright")]


def test_a_root_code_copyright_is_a_firm_origin_signal(tmp_path: Path) -> None:
    """modeling_*.py at the root is the model's code: its copyright names an origin and can conflict."""
    (tmp_path / "config.json").write_text(DEEPSEEK_CONFIG)
    (tmp_path / "modeling_x.py").write_text(MIT_HEADER + "class X: pass\n")
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    assert _code_copyright(result) == [("code-copyright", "medium")]
    [conflict] = [f for f in result.findings if f.rule == "PROVENANCE-ORIGIN-CONFLICT"]
    assert "Microsoft" in conflict.evidence and "deepseek-ai" in conflict.evidence


def test_vendored_code_in_a_folder_credits_its_upstream_without_a_conflict(tmp_path: Path) -> None:
    """InternLM's agent/streaming_inference.py: "modified from ToRA ... Copyright (c) Microsoft Corporation"."""
    (tmp_path / "config.json").write_text(DEEPSEEK_CONFIG)
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "streaming_inference.py").write_text("# modified from ToRA\n" + MIT_HEADER)
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    assert _code_copyright(result) == [("code-copyright-nested", "weak")]
    assert not [f for f in result.findings if f.rule == "PROVENANCE-ORIGIN-CONFLICT"]
    assert origin(result)["country"] == "CN"
    alone = tmp_path / "alone"
    (alone / "tools").mkdir(parents=True)
    (alone / "tools" / "convert.py").write_text(MIT_HEADER)       # the only signal: it still names the origin
    assert origin(audit(str(alone), Options(engines=("auditor",))))["country"] == "US"
