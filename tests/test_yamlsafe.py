"""YAML inside audited files (cards, configs, deployment manifests) cannot stall the audit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.parsers import yamlsafe
from tests.conftest import run_cli


def _bomb(levels: int = 12) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    prev = "a"
    for name in "bcdefghijklmnop"[:levels]:
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


def test_alias_bomb_and_recursive_alias_are_refused() -> None:
    with pytest.raises(yamlsafe.YamlError, match="expands to more than"):
        yamlsafe.load(_bomb())
    with pytest.raises(yamlsafe.YamlError, match="recursive alias"):
        yamlsafe.load("a: &a [*a]")


def test_ordinary_anchors_and_merges_still_load() -> None:
    text = "x-base: &base {image: app, env: [A=1]}\nservices:\n  web:\n    <<: *base\n    ports: [80]\n"
    assert yamlsafe.load(text)["services"]["web"] == {"image": "app", "env": ["A=1"], "ports": [80]}
    assert yamlsafe.load_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]


def test_audit_of_bombs_in_card_config_and_deployment_finishes_with_findings(tmp_path: Path) -> None:
    model, deploy = tmp_path / "model", tmp_path / "deploy"
    model.mkdir()
    deploy.mkdir()
    bomb = _bomb()
    (model / "README.md").write_text(f"---\n{bomb}license: apache-2.0\n---\n# card\n")
    (model / "config.yaml").write_text(bomb + "model:\n  _target_: torch.nn.Linear\n")
    (deploy / "docker-compose.yml").write_text(bomb)
    proc = run_cli("scan", str(model), "--deployment", str(deploy), "-q", timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    flagged = {f["file"] for f in findings if "expands to more than" in f["evidence"]}
    assert {"README.md", "config.yaml"} <= flagged
    assert any(f["rule"] == "ENDPOINT-LIMIT" and f["file"].endswith("docker-compose.yml") for f in findings)
