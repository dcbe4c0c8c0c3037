"""Fuzz litecls at scale: >= 10,000 image files and >= 500 model files through the CLI and the API.

    python benchmarks/fuzz.py                                   # 10,000 images, 500 models, seed 15
    python benchmarks/fuzz.py --images 2000 --models 100 --seed 3 --folder /tmp/fuzz

The corpus is the CI fuzz test's (``tests/fuzzing.py``), larger. Images go through
``litecls classify --json`` (2 decoding workers) and through ``ImageClassifier.classify`` one by
one (which times each file), 500 files per child process; models through the API, ``litecls
classify`` and ``litecls models info``, 25 per child. Printed: rows per outcome, files without
exactly one row, tracebacks, children that died by a signal or hung, peak resident memory of
any child, and the slowest files (CPU and wall time). A child that dies is reported with the
file it was on, and the run goes on with the next batch. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--model", default="efficientnet_lite0:int8", help="classifier for the images")
    parser.add_argument("--model-sources", nargs="+",
                        default=["efficientnet_lite0:int8", "mobilenet_v2:int8", "mobilenet_v2:float32"],
                        help="zoo files to mutate")
    parser.add_argument("--folder", help="where to write the corpus (default: a temporary folder)")
    args = parser.parse_args()

    from litecls.models.zoo import build, parse_model_ref

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="litecls-fuzz-"))
    model = str(build(*parse_model_ref(args.model)))
    failures = 0
    started = time.perf_counter()
    corpus = fuzzing.write_images(folder / "images", args.images, args.seed)
    print(f"wrote {len(corpus.inputs)} image inputs in {time.perf_counter() - started:.0f} s "
          f"({dict(Counter(k.split()[0] for k in corpus.kinds.values()).most_common())})", flush=True)

    outcomes: Counter = Counter()
    peak = {"cli": 0, "api": 0}
    slowest: list[tuple[float, float, str]] = []
    for first in range(0, len(corpus.inputs), 500):
        batch = corpus.inputs[first:first + 500]
        expected = Counter(batch)
        for name, runner in (("cli", fuzzing.cli_images), ("api", fuzzing.api_images)):
            run = runner(model, batch, folder / "images")
            peak[name] = max(peak[name], run.max_rss_bytes)
            rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
            got = Counter(row["file"] for row in rows)
            wrong = [n for n in batch if got[n] != 1] + [n for n in got if n not in expected]
            if run.timed_out or run.returncode not in (0, 1) or "Traceback" in run.stderr or wrong:
                failures += 1
                where = batch[len(rows)] if len(rows) < len(batch) else "?"
                print(f"FAIL {name} batch {first}: exit {run.returncode}, timed out {run.timed_out}, "
                      f"{len(wrong)} inputs without exactly one row, next file {where!r}\n"
                      f"{run.stderr[-1500:]}")
            if name == "api":
                outcomes.update(fuzzing.outcome_counts(run.stdout))
                slowest += [(row["cpu_s"], row["wall_s"], row["file"]) for row in rows]
                slowest = sorted(slowest, reverse=True)[:5]
        print(f"  images {first + len(batch)}/{len(corpus.inputs)}, {time.perf_counter() - started:.0f} s",
              flush=True)
    print("\nimage outcomes (API rows):")
    for key, count in outcomes.most_common():
        print(f"  {count:6d}  {key}")
    print(f"peak RSS of a child: CLI (2 workers) {peak['cli'] / 2**20:.0f} MiB, "
          f"API {peak['api'] / 2**20:.0f} MiB")
    print("slowest files (CPU s, wall s):")
    for cpu, wall, name in slowest:
        print(f"  {cpu:6.2f}  {wall:6.2f}  {name} ({corpus.kinds.get(name, '?')})")
    shutil.rmtree(folder / "images", ignore_errors=True)

    sources = [build(*parse_model_ref(ref)) for ref in args.model_sources]
    photo = folder / "photo.png"
    from PIL import Image

    Image.new("RGB", (320, 240), (120, 160, 200)).save(photo)
    model_outcomes: Counter = Counter()
    kinds_by_outcome: dict[str, Counter] = {}
    model_peak = 0
    for first in range(0, args.models, 25):
        batch = fuzzing.write_models(folder / "models", sources, min(25, args.models - first),
                                     seed=args.seed * 1000 + first)
        names = list(batch)
        while names:
            run = fuzzing.api_models(str(photo), names, folder)
            model_peak = max(model_peak, run.max_rss_bytes)
            rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
            done = [row for row in rows if "outcome" in row]
            for row in done:
                bad = "traceback" in row["outcome"] or "cli_traceback" in row or "info_traceback" in row
                key = "TRACEBACK" if bad else row["outcome"]
                model_outcomes[key] += 1
                kinds_by_outcome.setdefault(key, Counter())[batch[row["file"]].split("_")[0]] += 1
                if bad:
                    failures += 1
                    print(f"FAIL traceback for {row['file']} ({batch[row['file']]})")
            names = names[len(done):]
            if names and (run.returncode != 0 or run.timed_out):  # died on names[0]
                failures += 1
                what = "hang" if run.timed_out else f"exit {run.returncode}"
                model_outcomes[f"CRASH ({what})"] += 1
                print(f"FAIL {what} on {names[0]} ({batch[names[0]]})")
                names = names[1:]
        shutil.rmtree(folder / "models", ignore_errors=True)
    print(f"\nmodel outcomes ({args.models} models):")
    for key, count in model_outcomes.most_common():
        print(f"  {count:6d}  {key}  {dict(kinds_by_outcome.get(key, {}).most_common())}")
    print(f"peak RSS of a model child: {model_peak / 2**20:.0f} MiB")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {failures} failure(s)")
    if not args.folder:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
