"""The inventory: safe walk, streaming SHA-256, and format detection by content on real files."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import pickle
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from auditor import inventory
from auditor.model import Options, Snapshot
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
    (tmp_path / "weights.bin").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
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
