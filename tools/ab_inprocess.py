"""Times two or more builds of pyrnn against each other in one process, calls alternating.

    python tools/ab_inprocess.py BUILD_A BUILD_B [...] [--threads N] [--rounds R]
        [--cases lstm:256:256:50:64,gru:64:128:100:1,lstm:512:512:50:32:train]

Each BUILD is a folder holding a complete `pyrnn` package (the Python files and that build's
`_core*.so`). Each is copied under its own package name and imported beside the others, so the
builds share the process, its memory and its cores, and their calls alternate round by round.
Between processes this machine's timings differ by ~7%; in one process a build against a copy
of itself stays within 1-2%, which makes effects of a few percent visible (docs/HACKING.md).

A case is cell:I:H:T:B (float32 inference call on x of shape (T, B, I)), with ":train" for a
training forward and backward. Prints per case and build the median ms per call and the median
of the per-round ratios to the first build. List the first build twice to see the noise.
"""
import argparse
import atexit
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_SECONDS = 0.03  # calls per sample: as many as take about this long


def load_builds(folders, threads):
    """Imports each folder's pyrnn package as pyrnn_build<i>; returns the modules."""
    root = Path(tempfile.mkdtemp(prefix="pyrnn_ab_"))
    atexit.register(shutil.rmtree, root, True)
    modules = []
    for i, folder in enumerate(folders):
        shutil.copytree(Path(folder) / "pyrnn", root / f"pyrnn_build{i}")
    sys.path.insert(0, str(root))
    for i in range(len(folders)):
        module = importlib.import_module(f"pyrnn_build{i}")
        module.set_num_threads(threads)
        modules.append(module)
    return modules


def make_call(module, case):
    """The zero-argument call that times one case on one build (same seed and data for every build)."""
    fields = case.split(":")
    cell, (i, h, t, b), train = fields[0], map(int, fields[1:5]), fields[5:] == ["train"]
    layer = {"lstm": module.LSTM, "gru": module.GRU, "rnn": module.RNN}[cell](i, h, seed=1)
    x = np.random.default_rng(0).standard_normal((t, b, i)).astype(np.float32)
    if not train:
        return lambda: layer(x)
    dy = np.ones((t, b, h), np.float32)

    def train_step():
        _, _, tape = layer.forward(x, training=True)
        layer.backward(tape, dy)

    return train_step


def time_case(calls, rounds):
    """Per call: its samples (ms per call), the calls alternating within each round."""
    for call in calls:
        for _ in range(3):
            call()
    start = time.perf_counter()
    calls[0]()
    number = max(1, int(SAMPLE_SECONDS / (time.perf_counter() - start)))
    samples = [[] for _ in calls]
    for _ in range(rounds):
        for call, own in zip(calls, samples):
            start = time.perf_counter()
            for _ in range(number):
                call()
            own.append((time.perf_counter() - start) / number * 1e3)
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("builds", nargs="+", help="folders each holding a built pyrnn package")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--cases", default="lstm:256:256:50:64,lstm:64:128:100:1")
    args = parser.parse_args()
    if len(args.builds) < 2:
        parser.error("give at least two builds")
    modules = load_builds(args.builds, args.threads)
    for case in args.cases.split(","):
        samples = time_case([make_call(m, case) for m in modules], args.rounds)
        cells = []
        for folder, own in zip(args.builds, samples):
            ratio = statistics.median(s / base for s, base in zip(own, samples[0]))
            cells.append(f"{Path(folder).name}: {statistics.median(own):9.3f} ms ({ratio:.3f})")
        print(f"{case:26s}", "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
