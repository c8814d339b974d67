"""The runtime check: after the static audit, load the model in the sandbox the way its users would
(transformers with trust_remote_code, torch.load, joblib, keras, GGUF chat templates), run one forward
pass, and report every network, DNS, process, file-write and unexpected-import attempt with its call site.

A pipeline stage of its own (not a scanner: it executes the model's content, in auditor.sandbox only).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor import sandbox
from auditor.facts import Facts, RuntimeFacts
from auditor.model import FileRecord, Finding, Regions, Snapshot
from auditor.runtime import report

NAME = "runtime"
HERE = Path(__file__).resolve().parent
MODEL_MOUNT = "/model"
FULL_LOAD_MAX_BYTES = 2 * 1024**3      # above: a shrunken config with random weights instead of the real ones
MAX_CONFIG_BYTES = 4 * 1024**2
LIMITS = sandbox.SandboxLimits(memory_bytes=8 * 1024**3, cpu_seconds=900, wall_seconds=900, processes=256,
                               file_bytes=1024**3, open_files=2048, max_output_bytes=8 * 1024**2)
ENV = {"HF_HOME": "/home/sandbox/.cache/huggingface", "HF_HUB_DISABLE_TELEMETRY": "1", "MPLCONFIGDIR": "/tmp/mpl",
       "PYTHONWARNINGS": "ignore"}
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
JOBLIB_SUFFIXES = (".joblib", ".pkl", ".pickle", ".sav")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "spiece.model"}


def stage(snapshot: Snapshot, files: tuple[FileRecord, ...], facts: Facts, regions: Regions,
          limits: sandbox.SandboxLimits = LIMITS) -> list[Finding]:
    """Run the check; publish its RuntimeFacts and return the findings."""
    findings, fact = check(snapshot, files, sensitive_origins=regions.sensitive_origins, limits=limits)
    facts.publish(RuntimeFacts(fact))
    return findings


def check(snapshot: Snapshot, files: tuple[FileRecord, ...], *, sensitive_origins: Any = None,
          limits: sandbox.SandboxLimits = LIMITS) -> tuple[list[Finding], dict[str, Any]]:
    sensitive = report.sensitive_set(sensitive_origins)
    if snapshot.metadata_only:
        return [], {"status": "skipped", "reason": "metadata-only audit: the weights were not downloaded"}
    root = Path(snapshot.root)
    chosen = [f for f in files if not snapshot.single_file or f.path == snapshot.single_file]
    steps = plan(root, chosen)
    if not steps:
        return [], {"status": "nothing to load",
                    "reason": "no file the runtime check knows how to load (transformers config, torch, joblib, "
                              "keras or GGUF)"}
    request = {"model": MODEL_MOUNT, "files": [f.path for f in files], "steps": steps,
               "full_load_max_bytes": FULL_LOAD_MAX_BYTES, "requirements": requirements(root, files)}
    outcome = sandbox.run(HERE / "child_load.py", request, binds=[(str(root), MODEL_MOUNT)], limits=limits, env=ENV,
                          modules={"_auditor_watch": HERE / "child_watch.py"})
    return report.interpret(outcome, steps, sensitive)


def plan(root: Path, files: list[FileRecord]) -> list[dict[str, Any]]:
    """What to load, in the order a user would: the transformers model first, then loose artifacts."""
    steps: list[dict[str, Any]] = []
    names = {f.path for f in files}
    transformers_model = "config.json" in names and _is_transformers_config(root / "config.json")
    if transformers_model:
        weight_bytes = sum(f.size for f in files if f.path.lower().endswith(WEIGHT_SUFFIXES))
        steps.append({"kind": "transformers", "path": "config.json", "weight_bytes": weight_bytes,
                      "tokenizer": bool(names & TOKENIZER_FILES)})
    for rec in sorted(files, key=lambda f: f.path):
        lower = rec.path.lower()
        if rec.error or rec.format in ("empty", "lfs-pointer"):
            continue
        if lower.endswith(TORCH_SUFFIXES) and rec.format in ("zip", "pickle"):
            steps.append({"kind": "torch", "path": rec.path, "size": rec.size,
                          "too_large": rec.size > FULL_LOAD_MAX_BYTES})
        elif lower.endswith(JOBLIB_SUFFIXES) and rec.format in ("pickle", "zip", "gzip", "bz2", "xz", "unknown"):
            steps.append({"kind": "joblib", "path": rec.path, "size": rec.size,
                          "too_large": rec.size > FULL_LOAD_MAX_BYTES})
        elif lower.endswith(KERAS_SUFFIXES) and rec.format in ("zip", "hdf5") and not (
                transformers_model and lower.rsplit("/", 1)[-1].startswith("tf_model")):
            steps.append({"kind": "keras", "path": rec.path})
        elif rec.format == "gguf":
            steps.append({"kind": "gguf", "path": rec.path})
    return steps


def _is_transformers_config(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        config = json.loads(raw) if len(raw) <= MAX_CONFIG_BYTES else None
    except (OSError, ValueError, RecursionError):
        return True    # unreadable: let the real loader say why it fails, never skip it as "not a model"
    return isinstance(config, dict) and any(k in config for k in ("model_type", "auto_map", "architectures"))


def requirements(root: Path, files: tuple[FileRecord, ...]) -> list[str]:
    """Module names the model declares in a requirements.txt (the import names are often the same)."""
    names: list[str] = []
    for rec in files:
        if rec.path.rsplit("/", 1)[-1].lower() != "requirements.txt" or rec.size > 1024**2:
            continue
        try:
            text = (root / rec.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            name = line.split("#", 1)[0].strip()
            for stop in "[<>=!~;@ ":
                name = name.split(stop, 1)[0]
            if name and not name.startswith("-"):
                names += [name, name.replace("-", "_").lower()]
    return names
