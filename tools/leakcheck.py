"""Leak check for pyrnn's native code: runs every native entry point many times, on every ISA
this CPU has, and reports how resident memory grows.

    python tools/leakcheck.py [--iterations N] [--bound-mib M]
    python tools/leakcheck.py --valgrind

The first form exits 1 if resident memory grows by more than the bound between the end of the
warm-up and the end of the run. The second runs the first (with --no-rss) under valgrind's
memcheck twice, for 1 and for 4 iterations, and exits 1 if valgrind reports any error in a stack
that passes through pyrnn's _core, any block definitely or indirectly lost that _core allocated,
or more bytes lost through _core after 4 iterations than after 1. (CPython, numpy and the dynamic
loader have reports of their own at exit; those are counted, not judged.) Valgrind has no
AVX-512: under it the avx2 and generic kernels run. See docs/HACKING.md "Leak check".

Each iteration, per ISA and per model (every cell; projection, directions, stacks, lengths,
dropout, no bias, float64, batch_first): an inference call with lengths and one without state,
a streaming step carrying its state (both of the latter in one native call for all layers, the
bindings' NativeStack, where x is C-contiguous: all but the batch_first model's step), a
training forward + backward, a backward through a tape whose model was deleted, a backward
after load_state_dict, and calls that fail argument checking in Python and in the bindings.
"""
import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pyrnn  # noqa: E402

T, B, I, H = 12, 3, 6, 20


def models():
    return [
        pyrnn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=7, seed=1),
        pyrnn.GRU(I, H, num_layers=2, dropout=0.5, seed=2),
        pyrnn.RNN(I, H, nonlinearity="relu", bias=False, seed=3),
        pyrnn.LSTM(I, H, batch_first=True, dtype=np.float64, seed=4),
        pyrnn.LSTM(I, H, seed=5),
    ]


def exercise(make_models, rng):
    lengths = np.array([T, 0, T // 2])
    for index in range(len(make_models())):
        model = make_models()[index]
        shape = (B, T, I) if model.batch_first else (T, B, I)
        x = rng.standard_normal(shape).astype(model.dtype)
        _, state = model(x, lengths=lengths)
        model(x)  # no state: NativeStack's zeros, unless batch_first
        model(x[:1] if not model.batch_first else x[:, :1], state)  # streaming: the state as returned
        y, _, tape = model.forward(x, lengths=lengths)
        model.backward(tape, np.ones_like(y))
        model.load_state_dict(model.state_dict())           # weights replaced before backward
        model.backward(tape, np.ones_like(y))
        y, _, orphan = model.forward(x)
        survivor = make_models()[index]
        del model
        survivor.backward(orphan, np.ones_like(y))          # tape outlives its model
        for bad in (x[..., :2], x.astype(np.complex64)):     # rejected in Python
            try:
                survivor(bad)
            except (ValueError, TypeError):
                pass
        native = survivor._native[0]
        try:                                                  # rejected in the bindings
            native.forward(np.zeros((T, B, I), survivor.dtype), np.zeros((9, B, 1), survivor.dtype),
                           None, None, True)
        except ValueError:
            pass


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


VALGRIND = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
            "--num-callers=50"]
LOST = re.compile(r"([\d,]+) (?:\(([\d,]+) direct, ([\d,]+) indirect\) )?bytes in [\d,]+ blocks are "
                  r"(definitely|indirectly|possibly) lost")


def valgrind_records(iterations):
    """Runs this script under valgrind -> (records whose stack passes through pyrnn's _core,
    the number of all records)."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        command = VALGRIND + [f"--log-file={log.name}", sys.executable, os.path.abspath(__file__),
                              "--iterations", str(iterations), "--warmup", "0", "--no-rss"]
        print("$ PYTHONMALLOC=malloc " + " ".join(command), flush=True)
        subprocess.run(command, check=True, env={**os.environ, "PYTHONMALLOC": "malloc"})
        records = [r.strip() for r in re.split(r"\n==\d+== *\n", log.read())]
    return [r for r in records if "pyrnn/_core" in r], len(records)


def run_valgrind():
    totals, failures = {}, []
    for iterations in (1, 4):
        records, count = valgrind_records(iterations)
        lost = {"definitely": 0, "indirectly": 0, "possibly": 0}
        for record in records:
            header = record.splitlines()[0]
            match = LOST.search(header)
            if match is None:
                failures.append(record)                     # an error (bad read, uninitialised ...)
                continue
            kind = match.group(4)
            lost[kind] += int((match.group(2) or match.group(1)).replace(",", ""))
            if kind != "possibly":
                failures.append(record)
        totals[iterations] = sum(lost.values())
        print(f"{iterations} iteration(s): {count} valgrind records in all, {len(records)} through _core; "
              f"bytes lost through _core: " + ", ".join(f"{k} {v}" for k, v in lost.items()))
    for record in failures:
        print(record + "\n")
    grew = totals[4] > totals[1]
    if grew:
        print(f"bytes lost through _core grew from {totals[1]} (1 iteration) to {totals[4]} (4 iterations)")
    print("LEAK OR ERROR" if failures or grew else "ok: no error and no leak in pyrnn's _core")
    return 1 if failures or grew else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=None, help="default: iterations / 10")
    parser.add_argument("--bound-mib", type=float, default=4.0)
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS check (valgrind, ASan)")
    parser.add_argument("--valgrind", action="store_true", help="run under valgrind's memcheck (see above)")
    args = parser.parse_args()
    if args.valgrind:
        return run_valgrind()
    warmup = args.iterations // 10 if args.warmup is None else args.warmup
    pyrnn.set_num_threads(1)
    rng = np.random.default_rng(0)
    isas = pyrnn.available_isas()
    print(f"pyrnn {pyrnn._core.__file__}\nISAs {', '.join(isas)}; {warmup} + {args.iterations} iterations")

    def iteration():
        for isa in isas:
            pyrnn._core.select_isa(isa)
            exercise(models, rng)

    for _ in range(warmup):
        iteration()
    gc.collect()
    before = resident_bytes()
    for done in range(1, args.iterations + 1):
        iteration()
        if done % max(1, args.iterations // 5) == 0 or done == args.iterations:
            gc.collect()
            print(f"  after {done:6d} iterations: RSS {(resident_bytes() - before) / 2**20:+8.2f} MiB")
    growth = (resident_bytes() - before) / 2**20
    if args.no_rss:
        print("done (RSS not checked)")
        return 0
    verdict = "ok" if growth <= args.bound_mib else "LEAK?"
    print(f"{verdict}: RSS grew {growth:+.2f} MiB over {args.iterations} iterations (bound {args.bound_mib} MiB)")
    return 0 if growth <= args.bound_mib else 1


if __name__ == "__main__":
    sys.exit(main())
