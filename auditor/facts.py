"""What the scanners learned, as typed records: one fact type per scanner, registered under its name.

A scanner publishes its record with `ctx.facts.publish(...)` (or adds one file's entry to a per-file
record with `ctx.facts.add_file(...)`); a reader asks for the type it needs (`ctx.facts.get(
ProvenanceFacts)`), never for a string key. The JSON report holds `Facts.to_dict()`: each record under
its NAME, in the documented shape (README "JSON report").
"""
from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from auditor.record import field, record


@record
class Fact:
    """Base of every fact type. NAME is the key of the record in the report's `facts`."""
    NAME: ClassVar[str] = ""

    def to_dict(self) -> Any:
        raise NotImplementedError


@record
class FileFacts(Fact):
    """A per-file record: path (or path!member) -> what the scanner read from that file."""
    files: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Any:
        return dict(self.files)


# The per-scanner types below only name their record. They inherit their base's dataclass methods; a
# decorator of their own would generate the same ones again, for ~0.4 ms of start-up each.
class SafetensorsFacts(FileFacts):
    NAME: ClassVar[str] = "safetensors"


class GgufFacts(FileFacts):
    NAME: ClassVar[str] = "gguf"


class OnnxFacts(FileFacts):
    NAME: ClassVar[str] = "onnx"


class KerasFacts(FileFacts):
    NAME: ClassVar[str] = "keras"


class TensorflowFacts(FileFacts):
    NAME: ClassVar[str] = "tensorflow"


class TemplateFacts(FileFacts):
    NAME: ClassVar[str] = "templates"


class ConfigTargetFacts(FileFacts):
    NAME: ClassVar[str] = "config_targets"


@record
class PickleFacts(Fact):
    NAME: ClassVar[str] = "pickle"
    files: dict[str, Any] = field(default_factory=dict)   # path -> {kind, pickles, opcodes, globals}

    def to_dict(self) -> Any:
        return {"files": self.files}


@record
class RecordFacts(Fact):
    """A scanner-wide record whose documented shape is a JSON object (README lists its keys)."""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Any:
        return self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


class ModelscanFacts(RecordFacts):
    NAME: ClassVar[str] = "modelscan"


class CodeFacts(RecordFacts):
    NAME: ClassVar[str] = "code"


class EndpointFacts(RecordFacts):
    NAME: ClassVar[str] = "endpoints"


class DeploymentFacts(RecordFacts):
    NAME: ClassVar[str] = "deployment"


@record(frozen=True)
class LicenseObligation:
    """One obligation of a license the model (or an ancestor) carries, as the license scanner reports it."""
    term: str
    rule: str
    summary: str
    license: str
    license_id: str
    origins: tuple[str, ...]
    sources: tuple[str, ...]            # `FILE line N: "sentence"`, or the catalog entry's source
    licensor_control: bool              # the licensor must be contacted, or keeps control (registration ...)
    applies: bool = True                # False: e.g. a multimodal-only exclusion on a text-only model


class RuntimeFacts(RecordFacts):
    """{status, reason, steps, attempts, ...}: what the sandboxed load did (auditor.runtime)."""
    NAME: ClassVar[str] = "runtime"


class LicenseFacts(RecordFacts):
    """{model, code, notices, model_kind, lineage, obligations, governing_law, venue, summary}: see the
    license scanner. Readers use the typed accessors below."""
    NAME: ClassVar[str] = "license"

    @property
    def obligations(self) -> tuple[LicenseObligation, ...]:
        out = []
        for ob in self.data.get("obligations") or ():
            if isinstance(ob, dict):
                out.append(LicenseObligation(
                    term=str(ob.get("term", "")), rule=str(ob.get("rule", "")), summary=str(ob.get("summary", "")),
                    license=str(ob.get("license", "")), license_id=str(ob.get("license_id", "")),
                    origins=tuple(str(o) for o in ob.get("origins") or ()),
                    sources=tuple(str(s) for s in ob.get("sources") or ()),
                    licensor_control=bool(ob.get("licensor_control")), applies=ob.get("applies") is not False))
        return tuple(out)

    def licensor_control(self) -> tuple[LicenseObligation, ...]:
        """Obligations that put the licensee in contact with, or under the control of, the licensor."""
        return tuple(ob for ob in self.obligations if ob.licensor_control and ob.applies)

    @property
    def weights_license(self) -> str:
        model = self.data.get("model")
        if not isinstance(model, dict):
            return ""
        return str(model.get("spdx") or model.get("name") or model.get("id") or "")

    @property
    def code_license(self) -> str:
        code = self.data.get("code")
        return str(code.get("spdx") or code.get("name") or "") if isinstance(code, dict) else ""

    @property
    def governing_law(self) -> str:
        return str(self.data.get("governing_law") or "")

    @property
    def venue(self) -> str:
        return str(self.data.get("venue") or "")


class ModelCardFacts(RecordFacts):
    """{config: what config.json says the model is, card: the card's front matter fields, limitations:
    the card's own limitations section}: the model_card scanner, read by the CycloneDX modelCard."""
    NAME: ClassVar[str] = "model_card"


@record
class ProvenanceFacts(Fact):
    NAME: ClassVar[str] = "provenance"
    publisher: dict[str, Any] = field(default_factory=dict)
    lineage: list[dict[str, Any]] = field(default_factory=list)      # parent first, root last
    effective_origin: dict[str, Any] = field(default_factory=dict)
    signature: dict[str, Any] = field(default_factory=dict)
    pinning: dict[str, Any] = field(default_factory=dict)
    route: dict[str, Any] = field(default_factory=dict)
    remote_files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Any:
        return {"publisher": self.publisher, "lineage": self.lineage, "effective_origin": self.effective_origin,
                "signature": self.signature, "pinning": self.pinning, "route": self.route,
                "remote_files": self.remote_files}


@record
class IntegrityFacts(Fact):
    NAME: ClassVar[str] = "integrity"
    verification: dict[str, Any] = field(default_factory=dict)   # counts: verified, mismatched, ...

    def to_dict(self) -> Any:
        return {"verification": self.verification}


F = TypeVar("F", bound=Fact)
FF = TypeVar("FF", bound=FileFacts)


class Facts:
    """The records published during one audit, one per fact type."""

    def __init__(self) -> None:
        self._records: dict[type[Fact], Fact] = {}

    def publish(self, record: Fact) -> None:
        self._records[type(record)] = record

    def get(self, kind: type[F]) -> F | None:
        record = self._records.get(kind)
        return record if isinstance(record, kind) else None

    def add_file(self, kind: type[FF], path: str, value: Any) -> None:
        record = self.get(kind)
        if record is None:
            record = kind()
            self.publish(record)
        record.files[path] = value

    def to_dict(self) -> dict[str, Any]:
        out = {record.NAME: record.to_dict() for record in self._records.values()}
        integrity, provenance = out.get(IntegrityFacts.NAME), out.get(ProvenanceFacts.NAME)
        if isinstance(integrity, dict) and isinstance(provenance, dict):
            # auditor.report/v1 had the counts under provenance too: keys are never removed from v1
            provenance["verification"] = integrity["verification"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Facts:
        """Records back from a report's `facts` (unknown names are ignored)."""
        facts = cls()
        for name, value in data.items():
            kind = _BY_NAME.get(name)
            if kind is None or not isinstance(value, dict):
                continue
            if issubclass(kind, FileFacts):
                facts.publish(kind(files=dict(value)))
            elif kind is PickleFacts:
                facts.publish(PickleFacts(files=dict(value.get("files") or {})))
            elif issubclass(kind, RecordFacts):
                facts.publish(kind(data=dict(value)))
            elif kind is ProvenanceFacts:
                known = {k: value[k] for k in ProvenanceFacts().to_dict() if k in value}
                facts.publish(ProvenanceFacts(**known))
            elif kind is IntegrityFacts:
                facts.publish(IntegrityFacts(verification=dict(value.get("verification") or {})))
        return facts


def _fact_types(base: type[Fact]) -> list[type[Fact]]:
    found = []
    for sub in base.__subclasses__():
        if sub.NAME:
            found.append(sub)
        found.extend(_fact_types(sub))
    return found


_BY_NAME: dict[str, type[Fact]] = {kind.NAME: kind for kind in _fact_types(Fact)}
