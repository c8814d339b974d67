"""The inventory: safe walk, streaming SHA-256, and format detection by content on real files."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import pickle
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from auditor import inventory
from auditor.model import Options, Snapshot, manifest_digest
from auditor.sources import local


def _inventory(root: Path) -> inventory.Inventory:
    return inventory.build(local.open_snapshot(str(root), Options()), Options())


def _formats(root: Path) -> dict[str, str]:
    return {f.path: f.format for f in _inventory(root).files}


@pytest.fixture(scope="module")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per format, each made by the library that owns the format."""
    import h5py
    import onnx
    import py7zr
    import torch
    import zstandard
    from gguf import GGUFWriter
    from onnx import TensorProto, helper
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("formats")
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_file({"w": arr}, str(root / "model.safetensors"))
    torch.save({"w": torch.ones(2, 2)}, root / "zip.pt")
    torch.save({"w": torch.ones(2, 2)}, root / "legacy.pt", _use_new_zipfile_serialization=False)
    np.save(root / "arr.npy", arr)
    np.savez(root / "arrs.npz", a=arr)
    with h5py.File(root / "weights.h5", "w") as fh:
        fh.create_dataset("w", data=arr)
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, producer_name="test"), str(root / "model.onnx"))
    writer = GGUFWriter(str(root / "model.gguf"), "llama")
    writer.add_name("tiny")
    writer.add_tensor("w", arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    for proto in range(6):
        (root / f"p{proto}.pkl").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=proto))
    payload = pickle.dumps([1, 2, 3], protocol=4)
    (root / "c.pkl.gz").write_bytes(gzip.compress(payload))
    (root / "c.pkl.bz2").write_bytes(bz2.compress(payload))
    (root / "c.pkl.xz").write_bytes(lzma.compress(payload))
    (root / "c.pkl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload))
    with py7zr.SevenZipFile(root / "a.7z", "w") as archive:
        archive.writestr(payload, "data.pkl")
    with tarfile.open(root / "a.tar", "w") as tar:
        info = tarfile.TarInfo("data.pkl")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with zipfile.ZipFile(root / "plain.zip", "w") as zf:
        zf.writestr("x.txt", "hello")
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "README.md").write_text("# Modèle — 模型\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "pointer.bin").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:" + "ab" * 32 + "\nsize 123\n")
    return root


EXPECTED = {
    "model.safetensors": "safetensors", "zip.pt": "zip", "legacy.pt": "pickle", "arr.npy": "numpy",
    "arrs.npz": "zip", "weights.h5": "hdf5", "model.onnx": "onnx", "model.gguf": "gguf",
    "p0.pkl": "pickle", "p1.pkl": "pickle", "p2.pkl": "pickle", "p3.pkl": "pickle", "p4.pkl": "pickle",
    "p5.pkl": "pickle", "c.pkl.gz": "gzip", "c.pkl.bz2": "bz2", "c.pkl.xz": "xz", "c.pkl.zst": "zstd",
    "a.7z": "7z", "a.tar": "tar", "plain.zip": "zip", "config.json": "text", "README.md": "text",
    "empty.txt": "empty", "pointer.bin": "lfs-pointer",
}


def test_every_format_is_detected_by_content(real_files: Path) -> None:
    assert _formats(real_files) == EXPECTED


def test_hashes_are_sha256_of_the_bytes(real_files: Path) -> None:
    for rec in _inventory(real_files).files:
        assert rec.sha256 == hashlib.sha256((real_files / rec.path).read_bytes()).hexdigest()
        assert rec.size == (real_files / rec.path).stat().st_size


def test_multi_chunk_file_hash(tmp_path: Path) -> None:
    data = os.urandom(inventory.CHUNK * 2 + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    (rec,) = _inventory(tmp_path).files
    assert rec.sha256 == hashlib.sha256(data).hexdigest() and rec.size == len(data)


def test_lfs_pointer_records_the_oid_and_is_a_finding(real_files: Path) -> None:
    inv = _inventory(real_files)
    rec = next(f for f in inv.files if f.path == "pointer.bin")
    assert rec.publisher_sha256 == "ab" * 32
    assert any(f.rule == "INVENTORY-LFS-POINTER" and f.file == "pointer.bin" for f in inv.findings)


def test_benign_real_files_have_no_format_findings(real_files: Path) -> None:
    rules = {f.rule for f in _inventory(real_files).findings}
    assert not rules & {"FORMAT-EXTENSION-MISMATCH", "FORMAT-DISGUISED-EXECUTABLE"}


def test_pickle_behind_a_data_extension_is_a_disguise(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    (tmp_path / "weights.safetensors").write_bytes(pickle.dumps([1], protocol=4))
    (tmp_path / "picture.png").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    inv = _inventory(tmp_path)
    disguised = {f.file for f in inv.findings if f.rule == "FORMAT-DISGUISED-EXECUTABLE"}
    assert disguised == {"config.json", "weights.safetensors", "picture.png"}
    assert all(f.severity.label == "high" for f in inv.findings if f.rule == "FORMAT-DISGUISED-EXECUTABLE")


def test_png_named_pt_is_a_mismatch(tmp_path: Path) -> None:
    (tmp_path / "owl.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    inv = _inventory(tmp_path)
    (finding,) = [f for f in inv.findings if f.rule == "FORMAT-EXTENSION-MISMATCH"]
    assert finding.file == "owl.pt" and "image" in finding.evidence


def test_symlink_out_of_root_is_a_finding_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not read")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "inside_link.json").symlink_to(model / "config.json")
    (model / "escape.txt").symlink_to(outside / "secret.txt")
    (model / "escape_dir").symlink_to(outside)
    (model / "loop").symlink_to(model)
    inv = _inventory(model)
    paths = {f.path for f in inv.files}
    assert paths == {"config.json", "inside_link.json"}
    escapes = {f.file for f in inv.findings if f.rule == "INVENTORY-SYMLINK-ESCAPE"}
    assert escapes == {"escape.txt", "escape_dir"}
    assert any(f.rule == "INVENTORY-SYMLINK-DIR" and f.file == "loop" for f in inv.findings)


def test_fifo_is_a_finding_and_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "a.txt").write_text("x")
    inv = _inventory(tmp_path)   # would block forever if the FIFO were opened
    assert [f.path for f in inv.files] == ["a.txt"]
    assert any(f.rule == "INVENTORY-SPECIAL-FILE" and f.file == "pipe" for f in inv.findings)


def test_git_folder_is_skipped(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]")
    (tmp_path / "config.json").write_text("{}")
    inv = _inventory(tmp_path)
    assert [f.path for f in inv.files] == ["config.json"]
    assert any(f.rule == "INVENTORY-SKIPPED-VCS" for f in inv.findings)


def test_file_that_vanishes_is_recorded_as_unreadable(tmp_path: Path) -> None:
    snapshot = Snapshot(root=str(tmp_path), kind="local-folder", target=str(tmp_path))
    rec = inventory._record("gone.bin", tmp_path / "gone.bin", 10, snapshot)
    assert rec.error and not rec.sha256
    (finding,) = inventory._file_findings(rec)
    assert finding.rule == "INVENTORY-UNREADABLE"


def test_file_that_changes_size_while_read_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "grow.bin").write_bytes(b"12345")
    snapshot = Snapshot(root=str(tmp_path), kind="local-folder", target=str(tmp_path))
    rec = inventory._record("grow.bin", tmp_path / "grow.bin", 3, snapshot)
    assert "size changed" in rec.error


def test_max_files_limit_is_a_finding(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(str(i))
    from auditor.model import Limits
    options = Options(limits=Limits(max_files=3))
    inv = inventory.build(local.open_snapshot(str(tmp_path), options), options)
    assert len(inv.files) == 3
    assert any(f.rule == "INVENTORY-LIMIT" for f in inv.findings)


def test_progress_reports_all_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a" * 1000)
    (tmp_path / "b.bin").write_bytes(b"b" * 24)
    seen: list[tuple[int, int]] = []
    inventory.build(local.open_snapshot(str(tmp_path), Options()), Options(), lambda d, t: seen.append((d, t)))
    assert seen[-1] == (1024, 1024)


def test_dangling_symlink_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "gone.json").symlink_to(tmp_path / "missing.json")
    inv = _inventory(tmp_path)
    assert not inv.files
    assert any(f.rule == "INVENTORY-UNREADABLE" and "dangling" in f.evidence for f in inv.findings)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"x" * 10)
    (tmp_path / "secret.bin").chmod(0)
    inv = _inventory(tmp_path)
    assert any(f.rule == "INVENTORY-UNREADABLE" and f.file == "secret.bin" for f in inv.findings)


def test_file_replaced_between_survey_and_hashing_is_unreadable(tmp_path: Path) -> None:
    # larger than what the survey hashes from its own read, so the hashing threads open it again
    (tmp_path / "weights.bin").write_bytes(pickle.dumps([1, 2, b"x" * inventory.READ_WHOLE], protocol=4))
    snapshot = local.open_snapshot(str(tmp_path), Options())
    surveyed = inventory.survey(snapshot, Options())
    assert [f.format for f in surveyed.files] == ["pickle"] and not surveyed.files[0].sha256
    size = surveyed.files[0].size
    # swapped for other bytes of the same size after the scanners saw it
    (tmp_path / "weights.bin").write_bytes((b"\x89PNG\r\n\x1a\n" + b"\x00" * size)[:size])
    with inventory.Hashing(surveyed, snapshot, Options()) as hashing:
        final = hashing.result()
    assert "changed during the audit" in final.files[0].error
    assert any(f.rule == "INVENTORY-UNREADABLE" for f in final.findings)


def test_scanners_see_files_before_their_hashes_and_integrity_after(tmp_path: Path) -> None:
    from auditor.pipeline import audit
    (tmp_path / "a.json").write_text("{}")
    result = audit(str(tmp_path))
    assert result.files[0].sha256 == hashlib.sha256(b"{}").hexdigest()
    assert "scan.integrity" in result.timings and "hashing" in result.timings


def test_files_swapped_during_the_audit_are_critical_and_never_signed(tmp_path: Path) -> None:
    """Two equal-size files swapped by rename after the survey: the hashes and findings may pair up wrongly."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from auditor.pipeline import audit
    from auditor.reports import attestation

    model = tmp_path / "model"
    model.mkdir()
    (model / "a.bin").write_bytes(b"A" * 64)
    (model / "b.bin").write_bytes(b"B" * 64)
    swapped = []

    def swap_once(done: int, total: int) -> None:
        if not swapped:
            swapped.append(True)
            os.rename(model / "a.bin", model / "tmp")
            os.rename(model / "b.bin", model / "a.bin")
            os.rename(model / "tmp", model / "b.bin")

    result = audit(str(model), Options(engines=("auditor",)), progress=swap_once)
    changed = sorted(f.file for f in result.findings if f.rule == "INVENTORY-CHANGED")
    assert swapped and changed == ["a.bin", "b.bin"]
    assert all(f.severity.label == "critical" for f in result.findings if f.rule == "INVENTORY-CHANGED")
    assert result.verdict.decision == "fail"
    with pytest.raises(attestation.EvidenceError, match="changed during the audit"):
        attestation.sign(result, ed25519.Ed25519PrivateKey.generate())


def test_a_file_rewritten_in_place_with_the_same_size_is_caught(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    snapshot = local.open_snapshot(str(tmp_path), Options())
    surveyed = inventory.survey(snapshot, Options())
    assert inventory.changed_since(surveyed, snapshot) == []
    time.sleep(0.01)
    (tmp_path / "config.json").write_text('{"a": 2}')
    (changed,) = inventory.changed_since(surveyed, snapshot)
    assert changed.rule == "INVENTORY-CHANGED" and "rewritten in place" in changed.evidence
    (tmp_path / "config.json").unlink()
    assert "removed" in inventory.changed_since(surveyed, snapshot)[0].evidence


def test_small_files_hashed_from_the_survey_read_and_large_ones_by_the_threads(tmp_path: Path) -> None:
    sizes = {"a.json": 2, "edge.bin": inventory.READ_WHOLE, "big.bin": inventory.READ_WHOLE + 1,
             "large.bin": 3 * 1024 * 1024, "empty.txt": 0}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(os.urandom(size) if name != "a.json" else b"{}")
    snapshot = local.open_snapshot(str(tmp_path), Options())
    surveyed = inventory.survey(snapshot, Options())
    assert set(surveyed.read_whole) == {"a.json", "edge.bin", "empty.txt"}
    with inventory.Hashing(surveyed, snapshot, Options()) as hashing:
        final = hashing.result()
    assert [f.path for f in final.files] == [f.path for f in surveyed.files]   # survey order kept
    for rec in final.files:
        assert rec.sha256 == hashlib.sha256((tmp_path / rec.path).read_bytes()).hexdigest(), rec.path
        assert rec.size == sizes[rec.path] and not rec.error
    assert {f.path: f.format for f in final.files}["a.json"] == "text"


def test_small_file_rewritten_after_the_survey_is_reported_changed(tmp_path: Path) -> None:
    """Its hash comes from the survey's read: a later rewrite must not pass as the bytes that were hashed."""
    from auditor.pipeline import audit
    target = tmp_path / "config.json"
    target.write_text('{"a": 1}')
    snapshot = local.open_snapshot(str(tmp_path), Options())
    surveyed = inventory.survey(snapshot, Options())
    time.sleep(0.01)
    target.write_text('{"a": 2}')
    assert [f.rule for f in inventory.changed_since(surveyed, snapshot)] == ["INVENTORY-CHANGED"]
    assert audit(str(tmp_path)).files[0].sha256 == hashlib.sha256(b'{"a": 2}').hexdigest()


def test_cli_commands_load_on_demand(tmp_path: Path) -> None:
    from auditor.cli import COMMANDS, load
    from auditor.cli.args import Command, Group
    for name in COMMANDS:
        entry = load(name)
        assert isinstance(entry, Command | Group) and entry.name == name
    code = ("import sys; from auditor.cli import main\ntry: main(['--version'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('auditor.cli.', 'auditor.pipeline', 'numpy', 'click'))"
            " and m != 'auditor.cli.args'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd())
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def own_rules_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh parsed-rules cache and key folder for one test."""
    from auditor import rules
    monkeypatch.setenv("AUDITOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AUDITOR_STATE", str(tmp_path / "state"))
    rules._cache_key.cache_clear()
    rules._parsed_cache.cache_clear()
    yield tmp_path
    rules._cache_key.cache_clear()
    rules._parsed_cache.cache_clear()


def test_shipped_rules_are_read_through_a_json_copy_and_a_bad_copy_is_ignored(own_rules_cache: Path) -> None:
    import yaml

    from auditor import rules
    source = rules.rules_dir() / "formats.yaml"
    expected = yaml.safe_load(source.read_text(encoding="utf-8"))
    assert rules._shipped(source) == expected
    (copy,) = (own_rules_cache / "cache" / rules._PARSED_FORMAT).iterdir()
    assert copy.name == hashlib.sha256(source.read_bytes()).hexdigest() + ".json"
    written = copy.read_bytes()
    copy.write_text("{not json")
    assert rules._shipped(source) == expected          # a corrupt copy: the YAML is parsed again ...
    assert copy.read_bytes() == written                 # ... and the copy rewritten


def test_a_copy_not_made_with_this_users_key_is_never_read(own_rules_cache: Path) -> None:
    """A cache restored from another job (another key) or edited by hand: valid JSON, wrong MAC."""
    import json

    import yaml

    from auditor import rules
    source = rules.rules_dir() / "formats.yaml"
    expected = yaml.safe_load(source.read_text(encoding="utf-8"))
    rules._shipped(source)
    (copy,) = (own_rules_cache / "cache" / rules._PARSED_FORMAT).iterdir()
    mac, _, body = copy.read_bytes().partition(b"\n")
    assert len(mac) == 64 and json.loads(body) == expected
    forged = json.dumps({"tampered": True}).encode()
    other_key = b"k" * rules.KEY_BYTES
    copy.write_bytes(rules._mac(other_key, copy.stem, forged).encode() + b"\n" + forged)
    assert rules._shipped(source) == expected
    copy.write_bytes(mac + b"\n" + forged)            # our MAC over other bytes
    assert rules._shipped(source) == expected
    assert copy.read_bytes().partition(b"\n")[2] == body   # rewritten from the YAML


def test_a_key_others_can_read_is_not_used_and_no_copy_is_written(own_rules_cache: Path) -> None:
    import os

    from auditor import rules
    key = own_rules_cache / "state" / "rules-cache.key"
    key.parent.mkdir()
    key.write_bytes(b"k" * rules.KEY_BYTES)
    os.chmod(key, 0o644)
    import yaml
    source = rules.rules_dir() / "formats.yaml"
    assert rules._shipped(source) == yaml.safe_load(source.read_text(encoding="utf-8"))   # parsed from the YAML
    assert rules._cache_key() is None
    assert not (own_rules_cache / "cache").exists()
    os.chmod(key, 0o600)
    rules._cache_key.cache_clear()
    assert rules._cache_key() == b"k" * rules.KEY_BYTES


def test_the_key_is_made_once_private_and_reused(own_rules_cache: Path) -> None:
    import stat

    from auditor import rules
    first = rules._cache_key()
    key = own_rules_cache / "state" / "rules-cache.key"
    assert first is not None and len(first) == rules.KEY_BYTES and key.read_bytes() == first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in key.parent.iterdir()] == ["rules-cache.key"]      # no temp file left
    rules._cache_key.cache_clear()
    assert rules._cache_key() == first
    key.write_bytes(b"short")                                              # a key of the wrong length
    rules._cache_key.cache_clear()
    assert rules._cache_key() is None


def test_every_shipped_data_file_gets_a_json_copy_that_reads_back_equal(own_rules_cache: Path) -> None:
    """Integer-keyed tables (GGUF and ONNX type codes) too: a file without a copy is parsed by PyYAML on
    every run."""
    import yaml

    from auditor import rules
    sources = sorted(rules.rules_dir().rglob("*.yaml"))
    for source in sources:
        expected = yaml.safe_load(source.read_text(encoding="utf-8"))
        assert rules._shipped(source) == expected, source.name       # parsed, and the copy written
        assert rules._shipped(source) == expected, source.name       # read back from the copy
    assert len(list((own_rules_cache / "cache" / rules._PARSED_FORMAT).iterdir())) == len({s.read_bytes() for s in sources})
    gguf = rules._shipped(rules.rules_dir() / "weight-formats.yaml")["gguf"]["value_types"]
    assert gguf and all(type(k) is int for k in gguf)


def test_large_file_truncated_while_hashed_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """The hash stops at the new end and says so (a mapped file would fault on the lost pages)."""
    target = tmp_path / "model.safetensors"
    target.write_bytes(os.urandom(2 * inventory.CHUNK + 123))
    seen: list[int] = []

    def truncate_after_first_chunk(nbytes: int) -> None:
        seen.append(nbytes)
        if len(seen) == 1:
            os.truncate(target, 1000)

    rec = inventory._record("model.safetensors", str(target), 2 * inventory.CHUNK + 123,
                            local.open_snapshot(str(tmp_path), Options()), truncate_after_first_chunk)
    assert seen == [inventory.CHUNK]
    assert rec.error == f"size changed while reading ({2 * inventory.CHUNK + 123} -> {inventory.CHUNK} bytes)"
    assert not rec.sha256


def test_the_manifest_digest_is_the_sha256_of_what_sha256sum_prints_in_path_order(tmp_path: Path) -> None:
    """More files than one batch of lines (2,048), spaces and non-ASCII in names."""
    names = [f"d{i % 7}/f-{i:05d}.bin" for i in range(2600)] + ["Z.bin", "a b.bin", "é.bin", "z/€.txt"]
    for i, name in enumerate(names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(str(i).encode())
    ordered = sorted(names)
    printed = subprocess.run(["sha256sum", "--", *ordered], cwd=tmp_path, capture_output=True, check=True).stdout
    assert manifest_digest(_inventory(tmp_path).files) == hashlib.sha256(printed).hexdigest()


def test_a_records_hash_is_added_with_every_other_field_kept() -> None:
    """inventory._with_hash builds the record by hand (for speed): it must stay what replace() gives."""
    from auditor import record as records
    from auditor.inventory import _with_hash
    from auditor.model import FileRecord
    values = {f.name: (7 if f.type in ("int", int) else f"v-{f.name}") for f in records.fields(FileRecord)}
    rec = FileRecord(**values)
    assert _with_hash(rec, "h", "p") == records.replace(rec, sha256="h", publisher_sha256="p")


def test_word_lists_are_text_however_their_lines_spell_opcodes() -> None:
    """Lines of Python names after a word that opens with c (GLOBAL) or i (INST): requirements, labels,
    vocabularies. Seeded: before the text rule, ~0.2% of these were pickles (GLOBAL, PERSID, REDUCE...)."""
    import builtins
    import keyword
    import random

    words = sorted(set(dir(builtins)) | set(keyword.kwlist) | {"cat", "dog", "cython", "click", "torch", "build"})
    openers = [w for w in words if w[0] in "ci"]
    rng = random.Random(3)
    for _ in range(3000):
        text = "\n".join([rng.choice(openers), *rng.sample(words, 6)]) + "\n"
        assert inventory.detect(text.encode(), len(text)) == "text", text


@pytest.mark.parametrize("text", [b"cos\nsystem\n(S'id'\ntR.", b"cos\nsystem\n(S'id'\ntR\nno STOP, junk\n",
                                  b"(S'id'\nios\nsystem\n.", pickle.dumps({"a": [1, 2]}, protocol=0)])
def test_protocol0_pickles_are_pickles_though_they_are_text(text: bytes) -> None:
    assert inventory.detect(text, len(text)) == "pickle"
