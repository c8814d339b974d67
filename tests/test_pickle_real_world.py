"""Real-world pickle carriers: training_args.bin as transformers' Trainer writes it (clean), hostile .npy headers.

transformers is not a dependency, so the test defines stand-in classes under the real module names;
the pickler records exactly the globals the real file has (class by module and qualified name).
"""
from __future__ import annotations

import dataclasses
import enum
import sys
import types
from pathlib import Path

import pytest
import torch

from auditor.model import Options, Severity
from auditor.pipeline import audit


class IntervalStrategy(str, enum.Enum):   # noqa: UP042 - declared as transformers does
    STEPS = "steps"


class SchedulerType(str, enum.Enum):   # noqa: UP042 - declared as transformers does
    LINEAR = "linear"


@dataclasses.dataclass
class TrainingArguments:
    output_dir: str = "out"
    learning_rate: float = 5e-5
    eval_strategy: IntervalStrategy = IntervalStrategy.STEPS
    lr_scheduler_type: SchedulerType = SchedulerType.LINEAR


@pytest.fixture
def transformers_names(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("transformers")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "transformers", package)
    for module, objects in (("transformers.training_args", [TrainingArguments]),
                            ("transformers.trainer_utils", [IntervalStrategy, SchedulerType])):
        fake = types.ModuleType(module)
        for obj in objects:
            obj.__module__ = module
            setattr(fake, obj.__name__, obj)
        monkeypatch.setitem(sys.modules, module, fake)


def test_training_args_bin_is_clean(tmp_path: Path, transformers_names: None) -> None:
    torch.save(TrainingArguments(), tmp_path / "training_args.bin")
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    globals_seen = result.facts["pickle"]["files"]["training_args.bin"]["globals"]
    assert "transformers.training_args.TrainingArguments" in str(globals_seen)
    assert not [f for f in result.findings if f.rule.startswith("PICKLE-") and f.severity > Severity.INFO]


def test_oversized_npy_header_is_not_parsed(tmp_path: Path) -> None:
    header = ("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "1, " * 400_000 + "), }").encode()
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header)
    result = audit(str(tmp_path), Options(engines=("auditor",)))
    (finding,) = [f for f in result.findings if f.file == "huge.npy" and f.rule.startswith("PICKLE-")]
    assert finding.severity >= Severity.MEDIUM and "limit" in finding.evidence
