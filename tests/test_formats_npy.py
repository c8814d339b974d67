"""numpy headers against their bytes: real files from numpy, then headers that lie."""
from __future__ import annotations

import numpy as np

from tests.formats_support import rules_of, run_scanner


def _npy_with_header(shape, descr="<f8", data=b"\0" * 64) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin-1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def test_real_arrays_stay_quiet(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    np.savez_compressed(tmp_path / "b.npz", x=np.ones(5), y=np.zeros((2, 2), dtype=np.int8))
    np.save(tmp_path / "c.npy", np.array([], dtype=np.float64))
    assert run_scanner("npy", tmp_path)[0] == []


def test_one_tib_shape_over_64_bytes(tmp_path):
    (tmp_path / "huge.npy").write_bytes(_npy_with_header((1 << 37,)))
    found = run_scanner("npy", tmp_path)[0]
    [hit] = found
    assert hit.rule == "NUMPY-HEADER-MISMATCH" and "1099511627776 bytes" in hit.evidence and "holds 64" in hit.evidence


def test_trailing_bytes_and_npz_member(tmp_path):
    (tmp_path / "t.npy").write_bytes(_npy_with_header((4,), data=b"\0" * 32 + b"cposix\nsystem\n"))
    np.savez(tmp_path / "z.npz", ok=np.ones(3))
    import zipfile
    with zipfile.ZipFile(tmp_path / "z.npz", "a") as zf:
        zf.writestr("lie.npy", _npy_with_header((10, 10, 10)))
    found = run_scanner("npy", tmp_path)[0]
    assert rules_of(found, "t.npy") == {"NUMPY-TRAILING-DATA"}
    assert [(f.rule, f.location) for f in found if f.file == "z.npz"] == [("NUMPY-HEADER-MISMATCH", "member lie.npy: header")]
