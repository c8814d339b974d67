"""License benchmark: text identification and term extraction (with quoted sentences).

Run: python bench/bench_license.py [--corpus ../shared/corpus/licenses]
Measures, in the same run, best of 3, texts in memory:
- identify() + extract_facts() on every real license text of the corpus, against the floor any text
  approach pays (normalisation alone) and against GNU `grep -c -i -E` with the catalog's agreement
  titles over the same files (a naive keyword detector, whole process);
- the worst case: a 16 MB hostile "license" of catalog phrases shuffled with noise (every pattern has
  something to chew on), to show the bound MAX_TEXT_CHARS gives;
- the license scanner alone on a model folder with a card and all corpus files (in-process).
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from _common import best_of, workdir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor import inventory, sources  # noqa: E402
from auditor.model import Options  # noqa: E402
from auditor.parsers import licensetext
from auditor.scanners import ScanContext  # noqa: E402
from auditor.scanners import license as license_scanner  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/corpus/licenses"))
    args = parser.parse_args()
    corpus = Path(args.corpus)
    files = sorted(p for p in corpus.iterdir() if p.name != "INDEX.md")
    texts = [p.read_text(encoding="utf-8") for p in files]
    total_kb = sum(len(t.encode()) for t in texts) / 1024
    licensetext.catalog()     # parse the YAML once, outside the timings

    ident = best_of(lambda: [(licensetext.identify(t), licensetext.extract_facts(t)) for t in texts])
    norm = best_of(lambda: [licensetext.normalize(t) for t in texts])
    right = sum(1 for t in texts if licensetext.identify(t) is not None)

    titles = sorted({p for e in licensetext.catalog().entries.values() for m in e.matchers
                     for p in (licensetext._plain(x) for x in m.titles) if not p.startswith("(?")})
    grep_time = None
    if shutil.which("grep"):
        pattern = "|".join(t.replace(" ", "[^a-z0-9]+") for t in titles)
        grep_time = best_of(lambda: subprocess.run(["grep", "-c", "-i", "-E", pattern, *map(str, files)],
                                                   capture_output=True, check=False))

    rng = random.Random(6)
    words = " ".join(titles).split() + ["million", "monthly", "active", "users", "governed", "laws", "of",
                                        "courts", "remotely", "restrict", "territory", "excluding"]
    hostile = " ".join(rng.choice(words) for _ in range(2_400_000))[: 16 * 1024 * 1024]
    worst = best_of(lambda: (licensetext.identify(hostile), licensetext.extract_facts(hostile)), repeat=1)

    folder = workdir("license") / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("---\nlicense: other\nlicense_name: tongyi-qianwen\nbase_model: a/b\n---\n")
    for p, t in zip(files, texts, strict=True):
        (folder / f"LICENSE-{p.name[:40]}").write_text(t)
    options = Options()
    snapshot = sources.open_snapshot(str(folder), options)
    inv = inventory.build(snapshot, options)

    def scan_once() -> None:
        ctx = ScanContext(snapshot=snapshot, files=tuple(inv.files), options=options)
        list(license_scanner.scan(ctx))
    scanner = best_of(scan_once)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"corpus: {len(texts)} texts, {total_kb:.0f} KB; identified {right}/{len(texts)}")
    print("| text | identified as | time (identify + extract, best of 3) | terms read from the text |")
    print("|---|---|---|---|")
    for p, t in zip(files, texts, strict=True):
        per = best_of(lambda t=t: (licensetext.identify(t), licensetext.extract_facts(t)))
        match = licensetext.identify(t)
        found = sorted(licensetext.extract_facts(t))
        print(f"| {p.name[:48]} | {match.entry.id if match else '-'} | {per * 1000:.1f} ms | "
              f"{len(found)}: {', '.join(found)} |")
    print(f"identify + extract_facts, all texts: {ident * 1000:.1f} ms ({ident * 1000 / len(texts):.2f} ms/text)")
    print(f"normalize alone (floor): {norm * 1000:.1f} ms -> ratio {ident / norm:.1f}x")
    if grep_time is not None:
        print(f"grep -c -i -E <{len(titles)} titles> (process): {grep_time * 1000:.1f} ms -> ratio "
              f"{ident / grep_time:.2f}x")
    print(f"hostile 16 MB text (cut to {licensetext.MAX_TEXT_CHARS:,} chars): {worst:.2f} s")
    print(f"license scanner, folder with card + {len(texts)} license files: {scanner * 1000:.1f} ms")
    print(f"peak RSS of this process: {rss:.0f} MB")


if __name__ == "__main__":
    main()
