"""GEMM benchmark: pyrnn's per-ISA GEMM (via the private _core._gemm hook) against NumPy's matmul.

GFLOP/s from the analytic count 2*m*n*k; each case is timed interleaved with NumPy in the same
process at the same thread count (NumPy's BLAS threads are fixed through OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS in a child process per thread count, which runs without OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE so that NumPy uses OpenBLAS's own kernel), median of the repeats after a warm-up.
With several threads each timed batch follows a pause and an untimed warm-up batch: OpenBLAS's and
OpenMP's idle workers spin for a while after a call and would otherwise steal the cores of
whichever runs next, and a core woken from idle needs a moment to come back to speed.

    python bench/bench_gemm.py [--threads 1 2] [--isa avx512] [--repeats 7] [--quick]
"""
import argparse
import json
import os
import subprocess
import sys
import time

# (name, transpose_a, m, n, k): the shapes the layers run, plus a square reference.
CASES = [
    ("square_2048", False, 2048, 2048, 2048),
    ("input_proj_TB3200_I512_GH2048", False, 3200, 2048, 512),
    ("step_B1_H256_GH1024", False, 1, 1024, 256),
    ("step_B64_H512_GH2048", False, 64, 2048, 512),
    ("wgrad_TN_GH2048_I512_TB3200", True, 2048, 512, 3200),
]


def child(threads, isas, dtypes, repeats, quick, naive_dir):
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from pyrnn import _core

    naive = None
    if naive_dir:  # an older _core build to compare against, loaded under another package name
        import importlib.util

        so = [f for f in os.listdir(naive_dir) if f.startswith("_core")][0]
        spec = importlib.util.spec_from_file_location("naive_core._core", os.path.join(naive_dir, so))
        naive = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(naive)

    rng = np.random.default_rng(0)
    rows = []
    for dtype in dtypes:
        for name, ta, m, n, k in CASES:
            if quick and m * n * k > 2**31:
                continue
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            flops = 2.0 * m * n * k
            inner = max(1, int(2e8 / flops))  # ~>=10 ms per timed sample for the small shapes
            runners = {"numpy": (lambda: a.T @ b) if ta else (lambda: a @ b)}
            for isa in isas:
                runners[isa] = lambda isa=isa: _core._gemm(a, b, ta, isa, threads)
            if naive is not None:
                runners["naive"] = lambda: naive._gemm(a, b, ta, "avx512", threads)
            samples = {key: [] for key in runners}
            for key, fn in runners.items():  # warm-up
                fn()
            for _ in range(repeats):
                for key, fn in runners.items():
                    if threads > 1:  # let the previous runner's idle workers park, then re-warm
                        time.sleep(0.25)
                        for _ in range(inner):
                            fn()
                    t0 = time.perf_counter()
                    for _ in range(inner):
                        fn()
                    samples[key].append((time.perf_counter() - t0) / inner)
            gflops = {key: flops / sorted(v)[len(v) // 2] / 1e9 for key, v in samples.items()}
            rows.append({"case": name, "dtype": np.dtype(dtype).name, "threads": threads, "gflops": gflops})
    print(json.dumps(rows))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--isa", nargs="+", default=None)
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="skip the products above 2^31 multiply-adds")
    p.add_argument("--naive", default=None, help="folder holding another _core build to compare")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.isa is None:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        from pyrnn import _core

        args.isa = _core.available_isas()
    if args.child is not None:
        child(args.child, args.isa, args.dtype, args.repeats, args.quick, args.naive)
        return
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from pyrnn import _core
    from pyrnn.bench import blas_child_env

    info = _core.build_info()
    print(f"# build: {info['compiler']}, OpenMP {info['openmp']}, isas {info['available_isas']}")
    for isa in args.isa:
        for dt in args.dtype:
            print(f"# {isa} {dt}: {_core._gemm_config(isa, dt)}")
    keys = None
    for threads in args.threads:
        env = blas_child_env(threads)  # NumPy with OpenBLAS's own kernel for this CPU
        cmd = [sys.executable, __file__, "--child", str(threads), "--repeats", str(args.repeats),
               "--isa", *args.isa, "--dtype", *args.dtype] + (["--quick"] if args.quick else [])
        if args.naive:
            cmd += ["--naive", args.naive]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        for row in json.loads(out.strip().splitlines()[-1]):
            g = row["gflops"]
            if keys is None:
                keys = list(g)
                print(f"{'case':34s} {'dtype':8s} thr " + " ".join(f"{k:>9s}" for k in keys) +
                      "  " + " ".join(f"{k + '/np':>11s}" for k in keys if k != "numpy"))
            print(f"{row['case']:34s} {row['dtype']:8s} {threads:3d} " +
                  " ".join(f"{g[k]:9.1f}" for k in keys) + "  " +
                  " ".join(f"{g[k] / g['numpy']:11.2f}" for k in keys if k != "numpy"), flush=True)


if __name__ == "__main__":
    main()
