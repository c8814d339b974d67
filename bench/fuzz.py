"""Mutation fuzzer for the parsers of hostile files: runs each format's mutators for N minutes and
writes every input that crashes the scanner (an exception out of scan_path, a time or memory overrun,
a dead child) to a folder.

    python bench/fuzz.py --minutes 5 --out bench/out/fuzz [--formats pickle,zip] [--seed 1]

Formats are a registry: FORMATS[name] = Format(seeds=<function returning seed files as bytes>,
suffix=<file name suffix>, mutators=<extra mutators>). Other formats add themselves the same way
(`register(...)`); the generic mutators (bit flips, byte edits, splices, truncation, duplication)
apply to every format. Each input is scanned in a child process with a time and address-space limit,
so a crash, a hang or a blow-up is caught and recorded rather than killing the fuzzer.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import pickle
import random
import resource
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Mutator = Callable[[bytes, random.Random], bytes]


@dataclass
class Format:
    seeds: Callable[[], list[bytes]]
    suffix: str
    mutators: list[Mutator] = field(default_factory=list)


FORMATS: dict[str, Format] = {}


def register(name: str, fmt: Format) -> None:
    FORMATS[name] = fmt


# --- generic mutators ----------------------------------------------------------------------------

def flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def set_byte(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    buf[rng.randrange(len(buf))] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x95, ord("."), ord("("), rng.randrange(256)])
    return bytes(buf)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def splice(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 2:
        return data
    a, b = sorted(rng.randrange(len(data)) for _ in range(2))
    return data[:a] + data[a:b] * rng.randint(2, 50) + data[b:]


def delete(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 2:
        return data
    a = rng.randrange(len(data))
    return data[:a] + data[a + rng.randint(1, 16):]


def append_garbage(data: bytes, rng: random.Random) -> bytes:
    return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))


GENERIC: list[Mutator] = [flip, set_byte, truncate, splice, delete, append_garbage]


# --- pickle-family seeds and mutators ------------------------------------------------------------

def _pickle_seeds() -> list[bytes]:
    obj = {"w": list(range(50)), "n": None, "t": (1.5, b"xy", "z"), "s": {1, 2}}
    seeds = [pickle.dumps(obj, protocol=p) for p in range(6)]
    seeds.append(seeds[4][2:])                                   # FRAME first, no PROTO
    seeds.append(b"cos\nsystem\n(S'true'\ntR.")                  # protocol-0 payload
    return seeds


def drop_proto(data: bytes, rng: random.Random) -> bytes:
    return data[2:] if data[:1] == b"\x80" else data


def deep_nest(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([1000, 100_000])
    return b"\x80\x04}" + b")" + b"\x85" * depth + b"K\x01s."


def _zip_seeds() -> list[bytes]:
    out = []
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as z:
            z.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
            z.writestr("archive/data/0", b"\x00" * 64)
            z.writestr("archive/version", b"3\n")
        out.append(buf.getvalue())
    return out


def _legacy_seeds() -> list[bytes]:
    import torch
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf, _use_new_zipfile_serialization=False)
    return [buf.getvalue()]


def _joblib_seeds() -> list[bytes]:
    import joblib
    import numpy as np
    out = []
    for compress in (0, ("zlib", 3), ("xz", 3)):
        buf = io.BytesIO()
        joblib.dump({"a": np.arange(10), "o": np.array([1, "x"], dtype=object)}, buf, compress=compress)
        out.append(buf.getvalue())
    return out


def _npy_seeds() -> list[bytes]:
    import numpy as np
    out = []
    for arr in (np.arange(10), np.array([{"a": 1}, None], dtype=object)):
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        out.append(buf.getvalue())
    return out


def recompress(data: bytes, rng: random.Random) -> bytes:
    """Mutate inside a zlib stream, then compress again (reaches the pickle behind the compressor)."""
    try:
        inner = zlib.decompress(data)
    except zlib.error:
        return data
    return zlib.compress(flip(inner, rng))


register("pickle", Format(_pickle_seeds, ".pkl", [drop_proto, deep_nest]))
register("zip", Format(_zip_seeds, ".pt", []))
register("legacy-torch", Format(_legacy_seeds, ".pt", [drop_proto]))
register("joblib", Format(_joblib_seeds, ".joblib", [recompress]))
register("npy", Format(_npy_seeds, ".npy", []))


# --- the run -------------------------------------------------------------------------------------

CHILD = ("import sys; from pathlib import Path; from auditor.scanners.pickle import scan_path; "
         "f = scan_path(Path(sys.argv[1])); print(len(f))")


def _limit_child(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    return apply


def run_one(path: Path, seconds: float, memory_bytes: int) -> str:
    """"" when the scanner handled the input, else what went wrong."""
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, capture_output=True, text=True,
                              timeout=seconds, preexec_fn=_limit_child(memory_bytes))
    except subprocess.TimeoutExpired:
        return f"timeout after {seconds} s"
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return f"exit {proc.returncode}: {tail[0][:300]}"
    return ""


def fuzz(formats: list[str], minutes: float, out: Path, seed: int, seconds: float, memory_mb: int) -> dict[str, object]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "current"
    corpus = {name: FORMATS[name].seeds() for name in formats}
    stats: dict[str, dict[str, int]] = {name: {"inputs": 0, "crashers": 0} for name in formats}
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        name = rng.choice(formats)
        fmt = FORMATS[name]
        data = rng.choice(corpus[name])
        for _ in range(rng.randint(1, 3)):
            data = rng.choice(GENERIC + fmt.mutators)(data, rng)
        path = work.with_suffix(fmt.suffix)
        path.write_bytes(data)
        stats[name]["inputs"] += 1
        problem = run_one(path, seconds, memory_mb << 20)
        if problem:
            stats[name]["crashers"] += 1
            digest = hashlib.sha256(data).hexdigest()[:16]
            (out / f"{name}-{digest}{fmt.suffix}").write_bytes(data)
            (out / f"{name}-{digest}.txt").write_text(problem + "\n")
    return {"minutes": minutes, "seed": seed, "formats": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fuzz")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per input")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit per input")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise SystemExit(f"unknown format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    print(json.dumps(fuzz(formats, args.minutes, args.out, args.seed, args.seconds, args.memory_mb), indent=2))


if __name__ == "__main__":
    main()
