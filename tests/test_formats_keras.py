"""Keras: .h5 files written by h5py with Keras 2 style model_config attributes (incl. a Lambda whose
bytecode is a real code object compiled here), and .keras zips built by hand like Keras 3 writes them."""
from __future__ import annotations

import base64
import copy
import json
import marshal
import zipfile

import h5py
import numpy as np
import pytest

from tests.formats_support import rules_of, run_scanner


def _dense(name: str, units: int) -> dict:
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": "relu",
        "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None}}


KERAS2_CONFIG = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8], "dtype": "float32", "name": "input_1"}},
    _dense("dense", 4), _dense("dense_1", 2)]}}


def _lambda_layer(source: str) -> dict:
    code = compile(source, "<lambda>", "eval").co_consts[0]
    payload = base64.b64encode(marshal.dumps(code)).decode("ascii")
    return {"class_name": "Lambda", "config": {
        "name": "lambda", "trainable": True, "dtype": "float32", "function": [payload, None, None],
        "function_type": "lambda", "module": "__main__", "output_shape": None, "output_shape_type": "raw",
        "output_shape_module": None, "arguments": {}}}


def _write_h5(path, config: dict | None) -> None:
    with h5py.File(path, "w") as h5:
        if config is not None:
            h5.attrs["model_config"] = json.dumps(config).encode()
            h5.attrs["keras_version"] = b"2.12.0"
            h5.attrs["backend"] = b"tensorflow"
        weights = h5.create_group("model_weights/dense/dense")
        weights.create_dataset("kernel:0", data=np.zeros((8, 4), np.float32))


KERAS3_CONFIG = {"module": "keras", "class_name": "Sequential", "registered_name": None, "config": {
    "name": "sequential", "trainable": True,
    "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
    "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
         "config": {"batch_shape": [None, 8], "dtype": "float32", "name": "input_layer"}},
        {"module": "keras.layers", "class_name": "Dense", "registered_name": None, "build_config": {"input_shape": [None, 8]},
         "config": {"name": "dense", "units": 4, "activation": "relu",
                    "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                                           "config": {"seed": None}, "registered_name": None}}}]},
    "build_config": {"input_shape": [None, 8]},
    "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"learning_rate": 0.001},
                                     "registered_name": None}, "loss": "mse"}}


def _write_keras(path, config: dict) -> None:
    weights = path.parent / "weights-tmp.h5"
    _write_h5(weights, None)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.8.0", "date_saved": "2026-01-01@00:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        zf.write(weights, "model.weights.h5")
    weights.unlink()


@pytest.fixture(scope="module")
def benign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras-benign")
    _write_h5(folder / "model.h5", KERAS2_CONFIG)
    _write_h5(folder / "weights_only.h5", None)
    _write_keras(folder / "model.keras", KERAS3_CONFIG)
    return folder


def test_benign_models_are_clean(benign):
    findings, facts = run_scanner("keras", benign)
    assert findings == []
    assert facts["keras"]["model.keras"]["keras_version"] == "3.8.0"
    assert "Dense" in facts["keras"]["model.h5"]["classes"]
    assert facts["keras"]["weights_only.h5"]["has_model_config"] is False


def test_h5_lambda_names_its_bytecode(tmp_path):
    config = copy.deepcopy(KERAS2_CONFIG)
    config["config"]["layers"].append(_lambda_layer("lambda x: (__import__('os').system('touch /tmp/m'), x)[1]"))
    _write_h5(tmp_path / "evil.h5", config)
    hit = [f for f in run_scanner("keras", tmp_path)[0] if f.rule == "KERAS-LAMBDA"]
    assert hit and hit[0].severity == 4 and "'system'" in hit[0].evidence and "__import__" in hit[0].evidence
    assert hit[0].location == "attribute model_config: $.config.layers[3] ('lambda')"


def test_harmless_lambda_is_still_high(tmp_path):
    config = copy.deepcopy(KERAS2_CONFIG)
    config["config"]["layers"].append(_lambda_layer("lambda x: x * 2"))
    _write_h5(tmp_path / "lam.h5", config)
    hit = [f for f in run_scanner("keras", tmp_path)[0] if f.rule == "KERAS-LAMBDA"]
    assert hit and hit[0].severity == 3


def test_keras3_hostile_configs(tmp_path):
    cases = {
        "KERAS-FOREIGN-MODULE": {"module": "subprocess", "class_name": "Popen", "registered_name": None,
                                 "config": {"args": ["touch", "/tmp/x"]}},
        "KERAS-GET-FILE": {"module": "keras.utils", "class_name": "function", "config": "get_file",
                           "registered_name": "get_file"},
        "KERAS-TFSMLAYER": {"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
                            "config": {"name": "tfsm", "filepath": "/tmp/attacker_savedmodel", "call_endpoint": "serve"}},
        "KERAS-CUSTOM-OBJECT": {"module": "keras.layers", "class_name": "MyLayer", "registered_name": "my_pkg>MyLayer",
                                "config": {"name": "mine"}},
    }
    for rule, layer in cases.items():
        config = copy.deepcopy(KERAS3_CONFIG)
        config["config"]["layers"].append(layer)
        _write_keras(tmp_path / "model.keras", config)
        found = run_scanner("keras", tmp_path)[0]
        hit = [f for f in found if f.rule == rule]
        assert hit and hit[0].location.startswith("zip member config.json: $.config.layers[2]"), (rule, found)
        if rule == "KERAS-FOREIGN-MODULE":
            assert hit[0].severity == 4                     # subprocess: critical, not merely foreign
    code = compile("lambda x: eval('1')", "<l>", "eval").co_consts[0]
    config = copy.deepcopy(KERAS3_CONFIG)
    config["config"]["layers"].append({"module": "keras.layers", "class_name": "Lambda", "registered_name": None, "config": {
        "name": "lam", "function": {"class_name": "__lambda__", "config": {
            "code": base64.b64encode(marshal.dumps(code)).decode(), "defaults": None, "closure": None}}}})
    _write_keras(tmp_path / "model.keras", config)
    hit = [f for f in run_scanner("keras", tmp_path)[0] if f.rule == "KERAS-LAMBDA"]
    assert hit and "eval" in hit[0].evidence and hit[0].severity == 4


def test_keras2_custom_layer_and_garbage_bytecode(tmp_path):
    config = copy.deepcopy(KERAS2_CONFIG)
    config["config"]["layers"].append({"class_name": "AttentionPlusPlus", "config": {"name": "app"}})
    bad = _lambda_layer("lambda x: x")
    bad["config"]["function"][0] = base64.b64encode(b"\xe3garbage-not-marshal").decode()
    config["config"]["layers"].append(bad)
    _write_h5(tmp_path / "m.h5", config)
    found = run_scanner("keras", tmp_path)[0]
    assert {"KERAS-CUSTOM-OBJECT", "KERAS-LAMBDA"} <= rules_of(found)
    assert any("cannot decode" in f.evidence for f in found if f.rule == "KERAS-LAMBDA")


def test_broken_containers_fail_closed(tmp_path, benign):
    raw = (benign / "model.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(raw[: len(raw) // 3])
    (tmp_path / "noconfig.keras").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as zf:
        zf.writestr("metadata.json", "{}")
    with zipfile.ZipFile(tmp_path / "badjson.keras", "w") as zf:
        zf.writestr("config.json", '{"class_name": ')
    h5 = (benign / "model.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(h5[:2048])
    found = run_scanner("keras", tmp_path)[0]
    broken = {f.file for f in found if f.rule == "KERAS-UNPARSEABLE"}
    assert {"cut.keras", "empty.keras", "badjson.keras", "cut.h5"} <= broken


def test_foreign_package_module_is_high_not_critical(tmp_path):
    config = copy.deepcopy(KERAS3_CONFIG)
    config["config"]["layers"].append({"module": "fancy_layers.attention", "class_name": "FancyAttention",
                                       "registered_name": "fancy_layers>FancyAttention", "config": {"name": "fa"}})
    _write_keras(tmp_path / "model.keras", config)
    found = run_scanner("keras", tmp_path)[0]
    assert {(f.rule, int(f.severity)) for f in found} == {("KERAS-FOREIGN-MODULE", 3), ("KERAS-CUSTOM-OBJECT", 2)}
