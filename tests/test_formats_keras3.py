"""Keras 3 models saved by the real library (torch backend): bytecode in every place a config can hold a
function, configs that turn safe mode off, broken zips next to hostile ones, and the HDF5 reader's
per-file time budget."""
from __future__ import annotations

import json
import os
import zipfile

import h5py
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from auditor import sandbox  # noqa: E402
from auditor.scanners import keras as keras_scanner  # noqa: E402
from tests.formats_support import rules_of, run_scanner  # noqa: E402


def _benign(path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu",
                              kernel_regularizer=keras.regularizers.L2(0.01),
                              kernel_constraint=keras.constraints.MaxNorm(2.0)),
                              keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(1e-3), metrics=["mae"])
    model.save(path)


def test_real_benign_keras3_model_stays_below_medium(tmp_path):
    _benign(tmp_path / "model.keras")
    findings = run_scanner("keras", tmp_path)[0]
    assert all(f.severity < 2 for f in findings), findings


def test_lambda_in_compile_config_loss_and_dense_activation(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation=lambda x: x * 2)])
    model.compile(loss=lambda y, p: (y - p) ** 2, optimizer="adam", metrics=[lambda y, p: abs(y - p)])
    model.save(tmp_path / "model.keras")
    found = run_scanner("keras", tmp_path)[0]
    lambdas = [f for f in found if f.rule == "KERAS-LAMBDA"]
    locations = " ".join(f.location for f in lambdas)
    assert ".compile_config.loss" in locations and ".activation" in locations and ".compile_config.metrics" in locations
    assert all(f.severity == 3 for f in lambdas)


def _config_with(tmp_path, mutate) -> None:
    _benign(tmp_path / "base.keras")
    with zipfile.ZipFile(tmp_path / "base.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    mutate(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    (tmp_path / "base.keras").unlink()


def _lambda_payload(tmp_path) -> dict:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation=lambda x: x + 1)])
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    return config["config"]["layers"][1]["config"]["activation"]


@pytest.mark.parametrize("slot", ["activation", "kernel_initializer", "kernel_regularizer", "kernel_constraint",
                                  "optimizer learning_rate"])
def test_bytecode_in_any_function_slot_is_found(tmp_path, slot):
    payload = _lambda_payload(tmp_path)

    def mutate(config):
        if slot == "optimizer learning_rate":
            config["compile_config"]["optimizer"]["config"]["learning_rate"] = {"class_name": "__lambda__",
                                                                               "config": payload}
        else:
            config["config"]["layers"][1]["config"][slot] = payload

    _config_with(tmp_path, mutate)
    found = run_scanner("keras", tmp_path)[0]
    assert "KERAS-LAMBDA" in rules_of(found), found


def test_config_that_enables_unsafe_deserialization(tmp_path):
    payload = _lambda_payload(tmp_path)

    def mutate(config):
        layers = config["config"]["layers"]
        layers[1]["config"]["activation"] = {"module": "keras.config", "class_name": "function",
                                             "config": "enable_unsafe_deserialization", "registered_name": "function"}
        layers[2]["config"]["activation"] = payload

    _config_with(tmp_path, mutate)
    found = run_scanner("keras", tmp_path)[0]
    assert [f.severity for f in found if f.rule == "KERAS-SAFE-MODE-FLIP"] == [4]
    assert [f.severity for f in found if f.rule == "KERAS-LAMBDA"] == [4]


def test_function_reference_to_a_loading_api(tmp_path):
    def mutate(config):
        config["config"]["layers"][1]["config"]["activation"] = {
            "module": "keras.models", "class_name": "function", "config": "load_model", "registered_name": "function"}

    _config_with(tmp_path, mutate)
    assert "KERAS-DANGEROUS-FUNCTION" in rules_of(run_scanner("keras", tmp_path)[0])


def test_corrupt_deflate_does_not_hide_a_lambda_in_another_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x + 1)])
    model.save(tmp_path / "b.keras")
    _benign(tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "plain.keras") as src, \
            zipfile.ZipFile(tmp_path / "a.keras", "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    (tmp_path / "plain.keras").unlink()
    raw = bytearray((tmp_path / "a.keras").read_bytes())
    with zipfile.ZipFile(tmp_path / "a.keras") as zf:
        info = zf.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start:start + 16] = b"\xff" * 16
    (tmp_path / "a.keras").write_bytes(bytes(raw))
    found = run_scanner("keras", tmp_path)[0]
    assert rules_of(found, "a.keras") == {"KERAS-UNPARSEABLE"}
    assert "KERAS-LAMBDA" in rules_of(found, "b.keras")


def test_h5_reader_budget_is_per_file_and_never_retried(tmp_path, monkeypatch):
    for name in ("a.h5", "c.h5"):
        with h5py.File(tmp_path / name, "w") as h5:
            h5.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    os.mkfifo(tmp_path / "b.h5")          # opening it for reading blocks forever: the reader hangs
    monkeypatch.setattr(keras_scanner, "H5_SECONDS_PER_FILE", 2)
    launches = []
    real_run = sandbox.run
    monkeypatch.setattr(sandbox, "run", lambda payload, items, **kw: launches.append(len(items)) or
                        real_run(payload, items, **kw))
    paths = [str(tmp_path / n) for n in ("a.h5", "b.h5", "c.h5")]
    results = keras_scanner.read_h5_attrs(paths, 1 << 20)
    assert "model_config" in results[0] and "model_config" in results[2]
    assert "timed out on this file" in results[1]["error"]
    assert launches == [3, 1]          # b.h5 was read once; a.h5 was never read again
