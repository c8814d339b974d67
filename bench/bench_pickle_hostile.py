"""Hostile input, pickles and archives: time and peak RSS (the child's VmHWM) of scan_path on each bomb and
limit case, each built at run time. Prints a Markdown table for bench/RESULTS.md.

    python bench/bench_pickle_hostile.py [folder]
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = ("import sys, time; from pathlib import Path; from auditor.scanners.pickle import scan_path; "
         "t = time.perf_counter(); f = scan_path(Path(sys.argv[1])); dt = time.perf_counter() - t; "
         "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
         "top = max((x.severity for x in f), default=None); "
         "print(dt, int(hwm) / 1024, len(f), top.name if top else '-', ','.join(sorted({x.rule for x in f})[:4]))")


def build(folder: Path) -> dict[str, Path]:
    import py7zr
    import zstandard
    zeros = pickle.dumps(b"\0" * (1 << 30), protocol=4)   # 1 GiB of zeros inside a pickle
    cases: dict[str, Path] = {}
    packs = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
             "zstd": zstandard.ZstdCompressor().compress}
    for kind, pack in packs.items():
        cases[f"{kind} bomb (1 GiB)"] = _write(folder / f"bomb.pkl.{kind}", pack(zeros))
    path = folder / "bomb.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        z.writestr(zeros, "data.pkl")
    cases["7z bomb (1 GiB)"] = path
    inner = zeros[:64 << 20]
    for level in range(6):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for i in range(4):
                z.writestr(f"l{level}_{i}.zip" if level else f"data{i}.pkl", inner)
        inner = buf.getvalue()
    cases["nested zip, 6 levels x 4 members"] = _write(folder / "nested.zip", inner)
    path = folder / "pad.bin"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(100_000):
            z.writestr(f"archive/pad/{i}", b"")
        z.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
    cases["100,000 empty members before data.pkl"] = path
    cases["1,000,000-deep tuple key (1 MB)"] = _write(folder / "deep.pkl",
                                                      b"\x80\x04}" + b")" + b"\x85" * 1_000_000 + b"K\x01s.")
    cases["600,000 dangerous globals (7.7 MB)"] = _write(
        folder / "many.pkl", b"\x80\x02" + b"".join(b"cos\nf%d\n0" % i for i in range(600_000)) + b"N.")
    calls = b"".join(b"cbuiltins\ngetattr\n)R)R0" for _ in range(100_000))
    cases["100,000 computed calls + 200k-item list (2.7 MB)"] = _write(
        folder / "render.pkl", b"\x80\x02](" + b"K\x01" * 200_000 + b"e" + calls + b".")
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "out" / "hostile"
    folder.mkdir(parents=True, exist_ok=True)
    print("| case | file size | time (s) | peak RSS (MB) | findings | top severity | rules |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, path in build(folder).items():
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT,
                             timeout=600)
        if out.returncode:
            print(f"| {name} | {path.stat().st_size:,} | exit {out.returncode} | | | | {out.stderr[-200:]!r} |")
            continue
        dt, rss, count, top, *rest = out.stdout.split()
        found = rest[0] if rest else "-"
        print(f"| {name} | {path.stat().st_size:,} | {float(dt):.2f} | {float(rss):.0f} | {count} | {top} | {found} |")


if __name__ == "__main__":
    main()
