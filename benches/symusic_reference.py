"""The reference figure the codec bench is compared with: symusic on the same files.

    pip install symusic==0.6.0
    python3 benches/symusic_reference.py

Reads every MIDI file of the Groove MIDI Dataset into memory first, as `benches/codec.rs`
does, then times symusic's parse, write, and parse + write of all of them (best and median
of 15 runs). `FINE_DRUMS_GMD` names the dataset folder (default `../shared/datasets/groove`).
"""

import os
import statistics
import sys
import time

from symusic import Score


def corpus(root):
    files = []
    for folder, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if name.lower().endswith((".mid", ".midi")):
                with open(os.path.join(folder, name), "rb") as f:
                    files.append(f.read())
    return files


def timed(run, repeats=15):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main():
    root = os.environ.get("FINE_DRUMS_GMD", "../shared/datasets/groove")
    files = corpus(root)
    if not files:
        sys.exit(f"no MIDI files under {root} (set FINE_DRUMS_GMD)")
    total = sum(map(len, files))
    print(f"{len(files)} files, {total} bytes")
    scores = [Score.from_midi(b) for b in files]

    def parse():
        for b in files:
            Score.from_midi(b)

    def write():
        for s in scores:
            s.dumps_midi()

    def both():
        for b in files:
            Score.from_midi(b).dumps_midi()

    cases = [("parse", parse), ("write", write), ("parse + write", both)]
    for name, run in cases:
        best, median = timed(run)
        print(
            f"symusic {name}: best {best * 1e3:.1f} ms ({total / best / 1e6:.0f} MB/s), "
            f"median {median * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
