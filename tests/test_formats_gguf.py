"""GGUF: real files from the gguf package's writer, hand-built lies about counts, lengths and offsets."""
from __future__ import annotations

import struct

import gguf
import numpy as np
import pytest

from tests.formats_support import gguf_bytes, gguf_string, rules_of, run_scanner

BENIGN_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
                   "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf-benign")
    writer = gguf.GGUFWriter(str(folder / "tiny.gguf"), "llama")
    writer.add_name("tiny-test")
    writer.add_license("apache-2.0")
    writer.add_string("general.source.url", "https://huggingface.co/org/tiny")
    writer.add_string("general.base_model.0.repo_url", "https://huggingface.co/org/base")
    writer.add_chat_template(BENIGN_TEMPLATE)
    writer.add_token_list(["<s>", "</s>", "a", "b"])
    writer.add_tensor("tok.weight", np.zeros((4, 32), np.float32))
    writer.add_tensor("norm", np.ones(32, np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder


def test_benign_gguf_is_clean_and_agrees_with_gguf_reader(benign):
    findings, facts = run_scanner("gguf", benign)
    assert findings == []
    fact = facts["gguf"]["tiny.gguf"]
    assert fact["general.name"] == "tiny-test" and fact["general.license"] == "apache-2.0"
    assert fact["tokenizer.chat_template"] is True
    assert fact["general.source.url"] == "https://huggingface.co/org/tiny"
    reader = gguf.GGUFReader(str(benign / "tiny.gguf"))
    assert fact["tensors"] == len(reader.tensors) and fact["metadata_keys"] == len(reader.fields) - 3  # 3 header fields


def test_hostile_chat_template_in_gguf(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "evil.gguf"), "llama")
    writer.add_chat_template("{{ cycler.__init__.__globals__.os.popen('touch /tmp/x').read() }}")
    writer.add_tensor("w", np.zeros(32, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    findings, _ = run_scanner("gguf", tmp_path)
    escape = [f for f in findings if f.rule == "TEMPLATE-SANDBOX-ESCAPE"]
    assert escape and escape[0].location == "metadata tokenizer.chat_template line 1"
    assert max(f.severity for f in findings) == 4


def test_code_and_urls_in_free_text_metadata(tmp_path):
    raw = gguf_bytes([_kv_string("general.description", "run: import os; os.system('id') from http://a.invalid/x"),
                      _kv_string("general.source.url", "https://huggingface.co/org/x")], [], b"")
    found = [f for f in _scan_bytes(tmp_path, raw)]
    assert {f.rule for f in found} == {"GGUF-METADATA-CODE", "GGUF-METADATA-URL"}
    assert all(f.location == "metadata 'general.description'" for f in found)


def _kv_string(key, text):
    return (key, 8, gguf_string(text))


def _scan_bytes(tmp_path, raw):
    (tmp_path / "m.gguf").write_bytes(raw)
    return run_scanner("gguf", tmp_path)[0]


def test_handbuilt_file_is_clean(tmp_path):
    raw = gguf_bytes([_kv_string("general.name", "hand")], [("w", [32], 0, 0)], b"\x00" * 128)
    assert _scan_bytes(tmp_path, raw) == []


def test_count_lies_are_located(tmp_path):
    huge_tensors = gguf_bytes([_kv_string("general.name", "x")], [], b"", n_tensors=2**40)
    hit = [f for f in _scan_bytes(tmp_path, huge_tensors) if f.rule == "GGUF-COUNT-LIE"]
    assert hit and hit[0].location == "byte 8"
    huge_kv = gguf_bytes([_kv_string("general.name", "x")], [], b"", n_kv=10**9)
    hit = [f for f in _scan_bytes(tmp_path, huge_kv) if f.rule == "GGUF-COUNT-LIE"]
    assert hit and hit[0].location == "byte 16"
    long_string = gguf_bytes([("general.name", 8, struct.pack("<Q", 2**63) + b"abc")], [], b"")
    hit = [f for f in _scan_bytes(tmp_path, long_string) if f.rule == "GGUF-COUNT-LIE"]
    key_len = 8 + len("general.name") + 4
    assert hit and hit[0].location == f"byte {24 + key_len}"
    long_array = gguf_bytes([("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 2**50))], [], b"")
    assert "GGUF-COUNT-LIE" in rules_of(_scan_bytes(tmp_path, long_array))
    tokens = [gguf_string(f"t{i}") for i in range(7)]
    lying = struct.pack("<Q", 2**40) + b"t7"                       # the 8th token lies about its length
    array = struct.pack("<IQ", 8, 8) + b"".join(tokens) + lying
    raw = gguf_bytes([("tokenizer.ggml.tokens", 9, array)], [], b"")
    hit = [f for f in _scan_bytes(tmp_path, raw) if f.rule == "GGUF-COUNT-LIE"]
    assert hit and hit[0].location == f"byte {raw.index(lying)}" and "tokens[7]" in hit[0].evidence


def test_tensor_table_lies(tmp_path):
    past_end = gguf_bytes([], [("w", [1024, 1024], 0, 0)], b"\x00" * 64)
    hit = [f for f in _scan_bytes(tmp_path, past_end) if f.rule == "GGUF-TENSOR-INVALID"]
    assert hit and "tensor 'w'" in hit[0].location and "file ends" in hit[0].evidence
    rules = rules_of(_scan_bytes(tmp_path, gguf_bytes([], [("w", [32], 0, 0), ("v", [32], 0, 64)], b"\x00" * 128)))
    assert "GGUF-TENSOR-INVALID" in rules                  # overlapping data
    assert "GGUF-TENSOR-INVALID" in rules_of(_scan_bytes(tmp_path, gguf_bytes([], [("w", [32], 77, 0)], b"\x00" * 128)))
    assert "GGUF-TENSOR-INVALID" in rules_of(_scan_bytes(tmp_path, gguf_bytes([], [("w", [1] * 5, 0, 0)], b"\x00" * 32)))
    assert "GGUF-TENSOR-INVALID" in rules_of(_scan_bytes(tmp_path, gguf_bytes([], [("w", [32], 0, 3)], b"\x00" * 256)))
    assert "GGUF-DUPLICATE-KEY" in rules_of(_scan_bytes(tmp_path, gguf_bytes(
        [_kv_string("general.name", "a"), _kv_string("general.name", "b")], [], b"")))
    trailing = gguf_bytes([], [("w", [32], 0, 0)], b"\x00" * 128 + b"\x00" * 32 + b"hidden")
    assert "GGUF-TRAILING-DATA" in rules_of(_scan_bytes(tmp_path, trailing))


def test_truncated_and_bad_versions_fail_closed(tmp_path, benign):
    good = (benign / "tiny.gguf").read_bytes()
    for cut in (3, 10, 30, 200):
        found = _scan_bytes(tmp_path, good[:cut])
        assert rules_of(found) & {"GGUF-UNPARSEABLE", "GGUF-COUNT-LIE", "GGUF-TENSOR-INVALID"}, (cut, found)
        assert all(f.severity >= 2 for f in found)
    bad_version = good[:4] + struct.pack("<I", 99) + good[8:]
    hit = [f for f in _scan_bytes(tmp_path, bad_version) if f.rule == "GGUF-UNPARSEABLE"]
    assert hit and hit[0].location == "byte 4"
    bad_type = gguf_bytes([("general.name", 42, b"")], [], b"")
    assert "GGUF-UNPARSEABLE" in rules_of(_scan_bytes(tmp_path, bad_type))
