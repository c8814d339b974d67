"""safetensors and shard indexes: real files from the safetensors library, then hand-corrupted copies."""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.formats_support import rules_of, run_scanner, safetensors_bytes


@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("st-benign")
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(5, dtype=np.int64),
               "h": np.zeros((2, 2), dtype=np.float16)}, str(folder / "model.safetensors"),
              metadata={"format": "pt", "license": "apache-2.0"})
    return folder


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def test_benign_file_is_clean_and_publishes_metadata(benign):
    findings, facts = run_scanner("safetensors", benign)
    assert findings == []
    fact = facts["safetensors"]["model.safetensors"]
    assert fact["metadata"] == {"format": "pt", "license": "apache-2.0"}
    assert fact["tensors"] == 3 and fact["dtypes"] == ["F16", "F32", "I64"]


def _variant(tmp_path, benign, mutate):
    header, data = _header(benign / "model.safetensors")
    header, data = mutate(header, data)
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(header, data))
    return run_scanner("safetensors", tmp_path)[0]


def _only(findings, rule):
    hits = [f for f in findings if f.rule == rule]
    assert hits, f"{rule} not in {[(f.rule, f.location, f.evidence) for f in findings]}"
    return hits[0]


def test_size_mismatch_is_located(tmp_path, benign):
    def mutate(h, d):
        h["w"]["shape"] = [3, 5]
        return h, d
    hit = _only(_variant(tmp_path, benign, mutate), "SAFETENSORS-SIZE-MISMATCH")
    assert hit.location == "header tensor 'w'" and "60 bytes" in hit.evidence


def test_out_of_bounds_overlap_gap_trailing(tmp_path, benign):
    def out_of_bounds(h, d):
        h["b"]["data_offsets"] = [h["b"]["data_offsets"][0], len(d) + 100]
        return h, d
    assert "SAFETENSORS-OUT-OF-BOUNDS" in rules_of(_variant(tmp_path, benign, out_of_bounds))

    def overlap(h, d):
        first = min(h[k]["data_offsets"][0] for k in ("w", "b", "h"))
        target = next(k for k in ("w", "b", "h") if h[k]["data_offsets"][0] != first and h[k]["dtype"] == "F16")
        span = h[target]["data_offsets"][1] - h[target]["data_offsets"][0]
        h[target]["data_offsets"] = [first, first + span]
        return h, d
    assert "SAFETENSORS-OVERLAP" in rules_of(_variant(tmp_path, benign, overlap))

    def gap(h, d):   # shift every tensor by 16 bytes: 16 hidden bytes at the start of the data
        for k in ("w", "b", "h"):
            h[k]["data_offsets"] = [o + 16 for o in h[k]["data_offsets"]]
        return h, b"PAYLOAD-PAYLOAD!" + d
    hit = _only(_variant(tmp_path, benign, gap), "SAFETENSORS-GAP")
    (header_len,) = struct.unpack("<Q", (tmp_path / "model.safetensors").read_bytes()[:8])
    assert hit.location == f"bytes {8 + header_len}-{8 + header_len + 16}"

    payload = b"\x80\x04cos\nsystem\n"

    def trailing(h, d):
        return h, d + payload
    hit = _only(_variant(tmp_path, benign, trailing), "SAFETENSORS-TRAILING-DATA")
    assert f"{len(payload)} bytes" in hit.evidence


def test_dtype_duplicates_and_metadata(tmp_path, benign):
    def bad_dtype(h, d):
        h["w"]["dtype"] = "PICKLE"
        return h, d
    assert "SAFETENSORS-BAD-DTYPE" in rules_of(_variant(tmp_path, benign, bad_dtype))

    header, data = _header(benign / "model.safetensors")
    text = json.dumps(header)
    duplicated = text[:-1] + ', "w": ' + json.dumps(header["w"]) + "}"
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(duplicated.encode(), data))
    assert "SAFETENSORS-DUPLICATE-KEY" in rules_of(run_scanner("safetensors", tmp_path)[0])

    def hydra_metadata(h, d):
        h["__metadata__"] = {"config": "_target_: os.system", "home": "see https://example.invalid/x"}
        return h, d
    found = _variant(tmp_path, benign, hydra_metadata)
    assert {"SAFETENSORS-METADATA-CODE", "SAFETENSORS-METADATA-URL"} <= rules_of(found)


def test_unparseable_headers_fail_closed(tmp_path, benign):
    _, data = _header(benign / "model.safetensors")
    cases = {
        "len-past-end": safetensors_bytes({"a": 1}, b"", declared_len=10**6),
        "not-json": safetensors_bytes(b"{not json at all}", data),
        "truncated-json": safetensors_bytes(b'{"x": [1', b""),
        "entry-not-object": safetensors_bytes(b'{"x": [1, 2]}', b""),
        "tiny": b"\x01\x00",
    }
    for name, raw in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "m.safetensors").write_bytes(raw)
        found = run_scanner("safetensors", folder)[0]
        assert rules_of(found) & {"SAFETENSORS-UNPARSEABLE", "SAFETENSORS-LIMIT"}, (name, found)
        assert all(f.severity >= 2 for f in found)


def test_header_limit_and_depth(tmp_path):
    deep = b'{"__metadata__": ' + b"[" * 200 + b"]" * 200 + b"}"
    (tmp_path / "m.safetensors").write_bytes(safetensors_bytes(deep, b""))
    hit = _only(run_scanner("safetensors", tmp_path)[0], "SAFETENSORS-LIMIT")
    assert "deeper" in hit.evidence


def test_zero_size_tensor_agrees_with_library(tmp_path, benign):
    header, data = _header(benign / "model.safetensors")
    header["empty"] = {"dtype": "F32", "shape": [0], "data_offsets": [len(data), len(data)]}
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(header, data))
    assert run_scanner("safetensors", tmp_path)[0] == []


# --- shard indexes ---------------------------------------------------------------------------------

@pytest.fixture()
def sharded(tmp_path):
    save_file({"a": np.zeros((4, 4), np.float32)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b": np.zeros(8, np.float16)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"metadata": {"total_size": 64 + 16},
             "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    return tmp_path, index


def _write_index(folder, index):
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return run_scanner("shards", folder)[0]


def test_benign_shards_are_clean(sharded):
    folder, _ = sharded
    assert run_scanner("shards", folder)[0] == []


def test_shard_problems(sharded):
    folder, index = sharded
    assert "SHARDS-SIZE-MISMATCH" in rules_of(_write_index(folder, {**index, "metadata": {"total_size": 999}}))
    escape = {**index, "weight_map": {**index["weight_map"], "b": "../../outside/model.bin"}}
    hit = [f for f in _write_index(folder, escape) if f.rule == "SHARDS-PATH-ESCAPE"]
    assert hit and hit[0].location == "weight_map 'b'" and hit[0].severity >= 3
    missing = {**index, "weight_map": {**index["weight_map"], "b": "model-00003-of-00003.safetensors"}}
    found = _write_index(folder, missing)
    assert {"SHARDS-MISSING-SHARD", "SHARDS-UNREFERENCED"} <= rules_of(found)
    stray = [f for f in found if f.rule == "SHARDS-UNREFERENCED"]
    assert stray[0].file == "model-00002-of-00002.safetensors"
    assert stray[0].location == "next to model.safetensors.index.json"
    moved = {**index, "weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    assert {"SHARDS-INDEX-MISMATCH", "SHARDS-UNREFERENCED"} <= rules_of(_write_index(folder, moved))


def test_tensor_in_two_shards_and_stray_single_file(sharded):
    folder, index = sharded
    save_file({"b": np.zeros(8, np.float16), "a": np.zeros((4, 4), np.float32)},
              str(folder / "model-00002-of-00002.safetensors"))
    found = _write_index(folder, index)
    dup = [f for f in found if f.rule == "SHARDS-DUPLICATE-TENSOR"]
    assert dup and dup[0].location == "tensor 'a'"
    os.remove(folder / "model-00002-of-00002.safetensors")
    save_file({"b": np.zeros(8, np.float16)}, str(folder / "model-00002-of-00002.safetensors"))
    save_file({"a": np.ones((4, 4), np.float32)}, str(folder / "model.safetensors"))
    assert "SHARDS-UNREFERENCED" in rules_of(_write_index(folder, index))


def test_broken_index_fails_closed(sharded):
    folder, _ = sharded
    (folder / "model.safetensors.index.json").write_text('{"weight_map": ')
    assert rules_of(run_scanner("shards", folder)[0]) == {"SHARDS-UNPARSEABLE"}


def test_cross_check_reports_what_the_library_sees_differently(tmp_path, benign):
    from auditor.model import Limits
    from auditor.scanners import safetensors as st

    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(2, np.float32)}, str(other))
    ours = st.read_header(str(benign / "model.safetensors"), (benign / "model.safetensors").stat().st_size, Limits())
    rec = type("Rec", (), {"path": "other.safetensors"})()
    found = list(st._cross_check(rec, str(other), ours, clean=True))
    assert [f.rule for f in found] == ["SAFETENSORS-LIBRARY-DISAGREES"] and "'x'" in found[0].evidence
    (tmp_path / "broken.safetensors").write_bytes(safetensors_bytes({"a": {"dtype": "F32", "shape": [1],
                                                                            "data_offsets": [0, 4]}}, b""))
    found = list(st._cross_check(rec, str(tmp_path / "broken.safetensors"), ours, clean=True))
    assert found and "refused" in found[0].evidence


def test_large_file_header_goes_to_the_library_alone_and_a_refusal_still_counts(tmp_path, benign, monkeypatch):
    import safetensors

    from auditor.model import Limits
    from auditor.scanners import safetensors as st
    monkeypatch.setattr(st, "LIBRARY_BYTES_LIMIT", 0)      # every file takes the large-file path
    good = benign / "model.safetensors"
    assert st._library_tensor_names(safetensors, str(good)) is None        # accepted, names not compared
    ours = st.read_header(str(good), good.stat().st_size, Limits())
    assert list(st._cross_check(type("Rec", (), {"path": "m.safetensors"})(), str(good), ours, clean=True)) == []
    for header in ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},      # 4 bytes for two floats
                   {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}):      # overlapping tensors
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(safetensors_bytes(header, b"\0" * 8))
        found = list(st._cross_check(type("Rec", (), {"path": "bad.safetensors"})(), str(bad), ours, clean=True))
        assert [f.rule for f in found] == ["SAFETENSORS-LIBRARY-DISAGREES"] and "refused" in found[0].evidence


def test_a_library_that_does_not_judge_a_header_alone_is_asked_with_safe_open(benign, monkeypatch):
    """If a safetensors release compared the buffer's length before reading the header, a header alone
    would always get the same error: the calibration notices and the whole file is opened instead."""
    import safetensors

    from auditor.scanners import safetensors as st

    class LengthFirst:    # the real library behind a length check that comes first
        SafetensorError = safetensors.SafetensorError

        @staticmethod
        def deserialize(buffer: bytes) -> object:
            header_end = 8 + int.from_bytes(buffer[:8], "little")
            if len(buffer) == header_end and json.loads(buffer[8:header_end]):
                raise safetensors.SafetensorError("buffer too short")
            return safetensors.deserialize(buffer)

        safe_open = safetensors.safe_open

    monkeypatch.setattr(st, "LIBRARY_BYTES_LIMIT", 0)
    assert st._missing_data_error(LengthFirst) == ""
    assert st._library_tensor_names(LengthFirst, str(benign / "model.safetensors")) == {
        name for name, _ in safetensors.deserialize((benign / "model.safetensors").read_bytes())}


def test_a_sharded_model_is_cross_checked_without_importing_numpy(tmp_path):
    import subprocess
    import sys

    model = tmp_path / "m"
    model.mkdir()
    for i in range(2):
        save_file({f"w{i}": np.zeros(5 * 1024 * 1024, np.float32)}, str(model / f"model-0000{i + 1}-of-00002.safetensors"))
    code = ("import sys\nfrom auditor.pipeline import audit\nfrom auditor.model import Options\n"
            "r = audit(sys.argv[1], Options(engines=('auditor',)))\n"
            "print(sorted({f.rule for f in r.findings if f.rule.startswith('SAFETENSORS')}), 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "[] False"


def test_a_small_file_is_judged_on_the_bytes_the_survey_hashed(tmp_path):
    """A small file is read once: its header from the survey's bytes, as the path would give it."""
    from auditor.model import Limits
    from auditor.scanners import safetensors as scanner
    save_file({"w": np.ones((4, 4), dtype=np.float32)}, str(tmp_path / "m.safetensors"), metadata={"k": "v"})
    raw = (tmp_path / "m.safetensors").read_bytes()
    by_path = scanner.read_header(str(tmp_path / "m.safetensors"), len(raw), Limits())
    by_bytes = scanner.read_header(raw, len(raw), Limits())
    assert by_bytes == by_path and [t.name for t in by_bytes.tensors] == ["w"]
    (tmp_path / "m.safetensors").write_bytes(b"\0" * len(raw))   # the file on disk is not read again
    import safetensors
    assert scanner._library_tensor_names(safetensors, str(tmp_path / "m.safetensors"), raw) == {"w"}
