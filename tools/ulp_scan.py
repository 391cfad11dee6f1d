"""Measure the ulp error of pyrnn's vectorised exp / sigmoid / tanh (the _core._vmath hook).

  python tools/ulp_scan.py f32 [isa ...]   every one of the 2^32 float32 inputs, float64 reference
  python tools/ulp_scan.py f64 [isa ...]   ~3e7 float64 inputs (random bit patterns, dense grids
                                            over the active range), long double reference

Error of y against the exact value v: |y - v| / ulp(v), ulp in the output format (subnormal ulp
below the normal range). An infinite y counts as exact when v rounds to the same infinity, and
NaN as exact when v is NaN. Also checks: no NaN for non-NaN input, results in range, and
monotonicity (non-decreasing in x) over each scanned grid. Run from the repository root after
an in-place build (see README / docs); it takes a few minutes per ISA.
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's in-place build
from pyrnn import _core  # noqa: E402

NAMES = ("exp", "sigmoid", "tanh")


def reference(name, x, wide):
    with np.errstate(all="ignore"):
        x = x.astype(wide)
        if name == "exp":
            return np.exp(x)
        if name == "tanh":
            return np.tanh(x)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def inverse_ulp(v, dtype):
    fi = np.finfo(dtype)
    if v.dtype == np.float64:  # fast path: read the exponent field
        e = ((v.view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023
        e = np.maximum(e, fi.minexp) - fi.nmant
        return ((1023 - e).astype(np.uint64) << np.uint64(52)).view(np.float64)
    _, e = np.frexp(v)
    e = np.maximum(e.astype(np.int64) - 1, fi.minexp)
    return np.ldexp(np.ones_like(v), fi.nmant - e)


def ulp_error(y, v, dtype):
    with np.errstate(all="ignore"):
        err = np.abs(y.astype(v.dtype) - v) * inverse_ulp(v, dtype)
        err = np.where(np.isinf(y), np.where(v.astype(dtype) == y, 0.0, np.inf), err)
        err = np.where(np.isnan(v) & np.isnan(y), 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def check_range(name, x, y):
    ok = ~np.isnan(x)
    bad = np.isnan(y) & ok
    if name == "exp":
        bad |= (y < 0) & ok
    elif name == "sigmoid":
        bad |= ((y < 0) | (y > 1)) & ok
    else:
        bad |= ((y < -1) | (y > 1)) & ok
    return int(bad.sum())


class Stats:
    def __init__(self):
        self.max_err, self.arg, self.count, self.exact, self.bad, self.nonmono = 0.0, None, 0, 0, 0, 0

    def add(self, x, y, err, bad, nonmono):
        i = int(np.argmax(err))
        if err[i] > self.max_err or self.arg is None:
            self.max_err, self.arg = float(err[i]), x[i]
        self.count += x.size
        self.exact += int((err <= 0.5).sum())
        self.bad += bad
        self.nonmono += nonmono

    def line(self, dtype, name, isa):
        return (f"{dtype} {name:8s} {isa:8s} max {self.max_err:.3f} ulp at x={self.arg!r}; "
                f"correctly rounded {100 * self.exact / self.count:.3f}%; out of range/NaN {self.bad}; "
                f"monotonicity breaks {self.nonmono}")


def nonmonotone(y):
    y = y[~np.isnan(y)]
    return int((y[1:] < y[:-1]).sum())


def scan_f32(isas):
    chunk = 1 << 24
    for name in NAMES:
        stats = {isa: Stats() for isa in isas}
        for sign in (0, 1):  # increasing magnitude: x increasing for +, decreasing for -
            for start in range(0, 1 << 31, chunk):
                bits = np.arange(start, start + chunk, dtype=np.uint32) | np.uint32(sign << 31)
                x = bits.view(np.float32)
                v = reference(name, x, np.float64)
                for isa in isas:
                    y = _core._vmath(name, x, isa)
                    mono = nonmonotone(y if sign == 0 else -y if name == "tanh" else y[::-1])
                    stats[isa].add(x, y, ulp_error(y, v, np.float32), check_range(name, x, y), mono)
        for isa in isas:
            print(stats[isa].line("float32", name, isa), flush=True)


def scan_f64(isas):
    rng = np.random.default_rng(20240601)
    grids = [
        rng.integers(0, 1 << 64, 8_000_000, dtype=np.uint64).view(np.float64),  # whole range
        np.linspace(-760.0, 760.0, 8_000_001),
        np.linspace(-40.0, 40.0, 8_000_001),
        np.linspace(-1.0, 1.0, 4_000_001),
        np.geomspace(1e-320, 1.0, 2_000_000),
    ]
    for name in NAMES:
        stats = {isa: Stats() for isa in isas}
        for x in grids:
            x = np.sort(np.concatenate([x, -x]))
            v = reference(name, x, np.longdouble)
            for isa in isas:
                y = _core._vmath(name, x, isa)
                stats[isa].add(x, y, ulp_error(y, v, np.float64), check_range(name, x, y), nonmonotone(y))
        for isa in isas:
            print(stats[isa].line("float64", name, isa), flush=True)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "f64"
    isas = sys.argv[2:] or _core.available_isas()
    t0 = time.time()
    (scan_f32 if which == "f32" else scan_f64)(isas)
    print(f"{time.time() - t0:.0f} s")
