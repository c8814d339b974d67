"""safetensors polyglots: a pickle appended after the tensors, metadata smuggling a `_target_` config or
a pickle. Files come from the safetensors library; payloads from the real pickle module."""
from __future__ import annotations

import base64
import json
import os
import pickle
import struct

import numpy as np
from safetensors.numpy import save_file

from tests.formats_support import rules_of, run_scanner, safetensors_bytes


class _Payload:
    def __reduce__(self):
        return (os.system, ("id",))


def _real(path, metadata=None):
    save_file({"w": np.arange(6, dtype=np.float32)}, str(path), metadata=metadata)


def test_appended_pickle_is_named(tmp_path):
    _real(tmp_path / "model.safetensors")
    with open(tmp_path / "model.safetensors", "ab") as fh:
        fh.write(pickle.dumps(_Payload(), protocol=4))
    found = run_scanner("safetensors", tmp_path)[0]
    [hit] = [f for f in found if f.rule == "SAFETENSORS-APPENDED-PICKLE"]
    assert hit.severity == 4 and "posix.system" in hit.evidence
    assert "SAFETENSORS-TRAILING-DATA" in rules_of(found)


def test_appended_pickle_after_padding_and_protocol_0(tmp_path):
    _real(tmp_path / "model.safetensors")
    with open(tmp_path / "model.safetensors", "ab") as fh:
        fh.write(b"\0" * 13 + pickle.dumps(_Payload(), protocol=0))
    found = run_scanner("safetensors", tmp_path)[0]
    assert [f.severity for f in found if f.rule == "SAFETENSORS-APPENDED-PICKLE"] == [4]


def test_appended_harmless_bytes_are_only_trailing_data(tmp_path):
    _real(tmp_path / "a.safetensors")
    with open(tmp_path / "a.safetensors", "ab") as fh:
        fh.write(pickle.dumps({"step": 3, "loss": [0.5, 0.25]}) + b"\0" * 64)
    found = run_scanner("safetensors", tmp_path)[0]
    assert rules_of(found) == {"SAFETENSORS-TRAILING-DATA"} and all(f.severity == 2 for f in found)


def test_metadata_string_holding_a_target_config(tmp_path):
    _real(tmp_path / "json.safetensors", {"config": json.dumps({"_target_": "posix.system", "command": "id"})})
    _real(tmp_path / "yaml.safetensors", {"hydra": "model:\n  _target_: subprocess.Popen\n  args: [id]\n"})
    found = run_scanner("safetensors", tmp_path)[0]
    for name, target in (("json.safetensors", "posix.system"), ("yaml.safetensors", "subprocess.Popen")):
        [hit] = [f for f in found if f.file == name and f.rule == "CONFIG-TARGET-DANGEROUS"]
        assert hit.evidence == target and hit.severity == 4
        assert hit.location.startswith("header __metadata__ ")


def test_metadata_object_value_is_read_as_a_config(tmp_path):
    header = {"__metadata__": {"cfg": {"_target_": "posix.system", "command": "id"}},
              "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(header, struct.pack("<f", 1.0)))
    found = run_scanner("safetensors", tmp_path)[0]
    assert [f.location for f in found if f.rule == "CONFIG-TARGET-DANGEROUS"] == [
        "header __metadata__ 'cfg': $._target_"]


def test_metadata_pickle_base64(tmp_path):
    _real(tmp_path / "model.safetensors", {"state": base64.b64encode(pickle.dumps(_Payload())).decode()})
    found = run_scanner("safetensors", tmp_path)[0]
    assert [f.severity for f in found if f.rule == "SAFETENSORS-METADATA-PICKLE"] == [4]


def test_benign_metadata_stays_quiet(tmp_path):
    _real(tmp_path / "model.safetensors", {"format": "pt", "note": "trained on 8 GPUs; see README",
                                           "b64": base64.b64encode(b"just some bytes here!").decode()})
    found = run_scanner("safetensors", tmp_path)[0]
    assert all(f.severity < 2 for f in found), found
    assert not {"CONFIG-TARGET-DANGEROUS", "SAFETENSORS-METADATA-PICKLE"} & rules_of(found)
