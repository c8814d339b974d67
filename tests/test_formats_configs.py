"""Hydra/NeMo configs and YAML hparams: oversized configs, remote-code targets, python tags."""
from __future__ import annotations

import io
import tarfile

import yaml

from tests.formats_support import rules_of, run_scanner


def test_config_over_the_size_limit_is_high_and_still_searched(tmp_path):
    padding = "# " + "x" * 1000 + "\n"
    text = "model:\n  pre:\n    _target_: os.system\n    command: id\n" + padding * 17_500
    (tmp_path / "model_config.yaml").write_text(text)
    assert (tmp_path / "model_config.yaml").stat().st_size > 16 * 1024 * 1024
    found = run_scanner("config_targets", tmp_path)[0]
    limit = [f for f in found if f.rule == "CONFIG-TARGET-LIMIT"]
    assert limit and limit[0].severity == 3
    assert [f.evidence for f in found if f.rule == "CONFIG-TARGET-DANGEROUS"] == ["os.system"]


def test_big_config_without_targets_stays_quiet(tmp_path):
    (tmp_path / "data.yaml").write_text("rows:\n" + "  - {a: 1, b: 2}\n" * 1_200_000)
    assert run_scanner("config_targets", tmp_path)[0] == []


def test_from_pretrained_with_trust_remote_code(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "model:\n  backbone:\n    _target_: transformers.AutoModel.from_pretrained\n"
        "    pretrained_model_name_or_path: someone-else/backbone\n    trust_remote_code: true\n")
    found = run_scanner("config_targets", tmp_path)[0]
    [hit] = found
    assert hit.rule == "CONFIG-TARGET-REMOTE-CODE" and hit.severity == 3
    assert "someone-else/backbone" in hit.evidence and hit.location == "$.model.backbone._target_"
    (tmp_path / "config.yaml").write_text(
        "model:\n  backbone:\n    _target_: transformers.AutoModel.from_pretrained\n"
        "    pretrained_model_name_or_path: bert-base-uncased\n    trust_remote_code: false\n")
    assert run_scanner("config_targets", tmp_path)[0] == []


def test_yaml_python_tags_in_hparams(tmp_path):
    (tmp_path / "hparams.yaml").write_text("lr: 0.001\ncallback: !!python/object/apply:os.system ['id']\n")
    (tmp_path / "directive.yaml").write_text("%TAG !p! tag:yaml.org,2002:python/\n---\nx: !p!name:posix.system\n")
    (tmp_path / "escaped.yml").write_text("x: !!python%2Fobject%2Fnew:subprocess.Popen [[id]]\n")
    found = run_scanner("config_targets", tmp_path)[0]
    for name, tag, line in (("hparams.yaml", "!!python/object/apply:os.system", 2),
                            ("directive.yaml", "!!python/name:posix.system", 3),
                            ("escaped.yml", "!!python/object/new:subprocess.Popen", 1)):
        hits = [f for f in found if f.file == name and f.rule == "CONFIG-YAML-PYTHON-TAG"]
        assert [(h.evidence, h.severity, h.location) for h in hits] == [(tag, 4, f"line {line}")], found


def test_lightning_style_hparams_stay_below_medium(tmp_path):
    text = yaml.dump({"lr": 0.001, "betas": (0.9, 0.999), "layers": [64, 64]})
    assert "!!python/tuple" in text            # what PyYAML's default dumper writes for a tuple
    (tmp_path / "hparams.yaml").write_text(text)
    found = run_scanner("config_targets", tmp_path)[0]
    assert found and all(f.severity < 2 for f in found)


def test_tags_and_targets_together_and_nemo_member_limit(tmp_path, monkeypatch):
    from auditor.scanners import config_targets

    (tmp_path / "cfg.yaml").write_text("m:\n  _target_: builtins.eval\n  x: !!python/tuple [1, 2]\n")
    monkeypatch.setitem(config_targets._data(), "max_nemo_member_bytes", 64)
    config = b"model:\n  preprocessor:\n    _target_: os.system\n    command: id\n" + b"#" * 100
    with tarfile.open(tmp_path / "model.nemo", "w:gz") as tar:
        info = tarfile.TarInfo("./model_config.yaml")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
    found = run_scanner("config_targets", tmp_path)[0]
    assert rules_of(found, "cfg.yaml") == {"CONFIG-TARGET-DANGEROUS", "CONFIG-YAML-PYTHON-TAG"}
    assert [f.severity for f in found if f.file == "model.nemo"] == [3]
