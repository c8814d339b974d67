"""`auditor verify-evidence FILE --key PUB`: check signed evidence offline (exit 0 valid, 1 invalid, 2 error)."""
from __future__ import annotations

import argparse
from pathlib import Path

from auditor.cli.args import Command, echo, file_path, folder_path


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("evidence_file", type=file_path)
    p.add_argument("--key", dest="key_file", required=True, type=file_path,
                   help="The signer's PEM public key (or certificate).")
    p.add_argument("--model", dest="model_dir", default=None, type=folder_path,
                   help="Also check that the files in this folder have the signed hashes.")
    p.add_argument("--extract-bom", default=None, type=file_path, help="Write the verified CycloneDX BOM to this file.")


def run(evidence_file: str, key_file: str, model_dir: str | None, extract_bom: str | None) -> int:
    """Verify a DSSE envelope written by `auditor scan --sign-key`."""
    import json

    from auditor import atomic
    from auditor.errors import AuditorError
    from auditor.reports import attestation as evidence_signing
    from auditor.reports.attestation import EvidenceError
    from auditor.reports.view import clean

    key = evidence_signing.load_public_key(key_file)
    try:
        data = Path(evidence_file).read_bytes()
    except OSError as exc:
        raise AuditorError(f"cannot read {evidence_file}: {exc.strerror or exc}") from None
    verified = evidence_signing.verify(data, key)
    if model_dir:
        problems = evidence_signing.check_files(verified, model_dir)
        if problems:
            raise EvidenceError(f"{len(problems)} file(s) do not match the evidence: {'; '.join(problems[:5])}")
    subject = verified.subjects[0]
    echo(f"verified: signed by key {verified.keyid[:16]}…; model {clean(subject.get('name'), 200)} "
         f"(manifest sha256 {clean(subject.get('digest', {}).get('sha256', '?'), 64)}); "
         f"{len(verified.subjects) - 1} file(s)" + (" match the folder" if model_dir else ""))
    declarations = verified.bom.get("declarations", {})
    attestations = declarations.get("attestations", [])
    if attestations:
        echo(clean(attestations[0].get("summary", ""), 300, keep_newlines=False))
    for claim in declarations.get("claims", []):     # neutralised: no terminal escapes from a file
        echo(f"  {clean(claim.get('bom-ref', '?'), 60)}: {clean(claim.get('reasoning', ''), 200, keep_newlines=False)}")
    if extract_bom:
        atomic.write(Path(extract_bom), json.dumps(verified.bom, indent=2, ensure_ascii=False) + "\n")
    return 0


command = Command("verify-evidence", run, _arguments)
