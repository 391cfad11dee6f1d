"""Weighted minimax polynomial fits for csrc/math/ (exp, tanh), by the Remez exchange.

Fits p of degree n on [a, b] minimising max |w(t) (p(t) - f(t))| with mpmath at 60 digits,
then rounds the coefficients to the target precision and reports the weighted error of the
rounded polynomial (evaluated exactly, i.e. the approximation error alone, before the
rounding errors of the evaluation). Needs mpmath. Run: python tools/remez.py (~15 s).
"""
import mpmath as mp

mp.mp.dps = 60


def remez(f, w, a, b, n, iters=30, grid=20000):
    # Start from Chebyshev extrema; each round solves for p and the levelled error E on the
    # reference, then moves the reference to the alternating extrema of the error curve.
    a, b = mp.mpf(a), mp.mpf(b)
    ref = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (n + 1)) for i in range(n + 2)]
    ref = [t if abs(w(t)) > mp.mpf(10) ** -20 else t + (b - a) * mp.mpf(10) ** -3 for t in ref]  # off w = 0
    ts = [a + (b - a) * i / grid for i in range(grid + 1)]
    fs = [f(t) for t in ts]
    ws = [w(t) for t in ts]
    for _ in range(iters):
        A = mp.matrix(n + 2, n + 2)
        rhs = mp.matrix(n + 2, 1)
        for i, t in enumerate(ref):  # w(t) (p(t) - f(t)) = (-1)^i E
            for j in range(n + 1):
                A[i, j] = w(t) * t ** j
            A[i, n + 1] = -((-1) ** i)
            rhs[i] = w(t) * f(t)
        sol = mp.lu_solve(A, rhs)
        c = [sol[j] for j in range(n + 1)]
        err = [ws[k] * (mp.polyval(c[::-1], ts[k]) - fs[k]) for k in range(len(ts))]
        # Alternating extrema: split the grid into runs of one sign, keep each run's peak.
        peaks = []
        for k, e in enumerate(err):
            s = e >= 0
            if peaks and peaks[-1][0] == s:
                if abs(e) > abs(err[peaks[-1][1]]):
                    peaks[-1] = (s, k)
            else:
                peaks.append((s, k))
        while len(peaks) > n + 2:  # drop the smallest peak, then re-merge same-sign neighbours
            peaks.pop(min(range(len(peaks)), key=lambda i: abs(err[peaks[i][1]])))
            merged = []
            for s, k in peaks:
                if merged and merged[-1][0] == s:
                    if abs(err[k]) > abs(err[merged[-1][1]]):
                        merged[-1] = (s, k)
                else:
                    merged.append((s, k))
            peaks = merged
        if len(peaks) < n + 2:
            raise RuntimeError("Remez: fewer alternations than n + 2; degree too high for the grid?")
        ref = [ts[k] for _, k in peaks]
        if max(abs(e) for e in err) <= abs(sol[n + 1]) * (1 + mp.mpf(10) ** -6):
            break  # levelled: the extrema equal |E|
    return c, max(abs(e) for e in err)


def rounded_error(c, f, w, a, b, to, grid=20000):
    cr = [to(x) for x in c]
    a, b = mp.mpf(a), mp.mpf(b)
    ts = [a + (b - a) * i / grid for i in range(grid + 1)]
    return cr, max(abs(w(t) * (mp.polyval([mp.mpf(x) for x in cr[::-1]], t) - f(t))) for t in ts)


def to_f32(x):
    import numpy as np
    return float(np.float32(float(x)))


def to_f64(x):
    return float(x)


def exp_fit(n, to, half=None):
    # exp(r) ~ 1 + r + r^2 Q(r) on |r| <= ln2/2 (+ margin for the rounding of n): relative error.
    h = half or mp.log(2) / 2 * (1 + mp.mpf(2) ** -10)

    def f(r):  # (e^r - 1 - r) / r^2, by its series where the difference cancels
        if abs(r) < mp.mpf(10) ** -12:
            return mp.mpf(1) / 2 + r / 6 + r ** 2 / 24 + r ** 3 / 120 + r ** 4 / 720
        return (mp.exp(r) - 1 - r) / r ** 2

    def w(r):
        return r ** 2 / mp.exp(r)

    c, e = remez(f, w, -h, h, n)
    return rounded_error(c, f, w, -h, h, to) + (e,)


def tanh_fit(n, to, a):
    # tanh(x) ~ x + x^3 P(x^2) on 0 <= x <= a, P of degree n in s = x^2: relative error.
    def f(s):  # (tanh x - x) / x^3, by its series where the difference cancels
        if s < mp.mpf(10) ** -24:
            return -mp.mpf(1) / 3 + 2 * s / 15 - 17 * s ** 2 / 315
        x = mp.sqrt(s)
        return (mp.tanh(x) - x) / x ** 3

    def w(s):
        if s == 0:
            return mp.mpf(0)
        x = mp.sqrt(s)
        return x ** 3 / mp.tanh(x)

    c, e = remez(f, w, 0, mp.mpf(a) ** 2, n)
    return rounded_error(c, f, w, 0, mp.mpf(a) ** 2, to) + (e,)


if __name__ == "__main__":
    for name, fit, args in [
        ("exp f32 Q deg 4", exp_fit, (4, to_f32)),
        ("exp f64 Q deg 9", exp_fit, (9, to_f64)),
        ("tanh f32 P deg 4 on [0, 0.625]", tanh_fit, (4, to_f32, 0.625)),
        ("tanh f64 P deg 10 on [0, 0.625]", tanh_fit, (10, to_f64, 0.625)),
    ]:
        coeffs, err_rounded, err = fit(*args)
        print(f"{name}: minimax rel error {mp.nstr(err, 4)}, with rounded coefficients {mp.nstr(err_rounded, 4)}")
        for x in coeffs:
            print(f"    {x!r}")
