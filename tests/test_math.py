"""The vectorised exp / sigmoid / tanh (csrc/math/) through the private hook _core._vmath,
on every ISA this CPU has (the others are skipped).

Reference: the exact value computed at higher precision -- float64 for float32 results, long
double (x87 80-bit, 64-bit mantissa) for float64 results; sigmoid as 1 / (1 + e^-x) for x >= 0
and e^x / (1 + e^x) for x < 0, which cancels nowhere.

Error: |y - v| / ulp(v), ulp in the output format (the subnormal ulp below the normal range);
an infinite y is exact when v rounds to that infinity, a NaN y when v is NaN.
"""
import numpy as np
import pytest

from pyrnn import _core

# ---- tolerances: the bounds stated in csrc/math/{exp,sigmoid,tanh}.h, in ulp ----------------
ULP_BOUND = {
    ("exp", np.float32): 1.5,
    ("exp", np.float64): 1.5,
    ("sigmoid", np.float32): 2.5,
    ("sigmoid", np.float64): 2.5,
    ("tanh", np.float32): 2.0,
    ("tanh", np.float64): 2.0,
}
SEED = 20240601
# Lane counts of Vec<float> / Vec<double> over the ISAs are 2, 4, 8 and 16: these sizes put
# every ISA's tail at 0, 1 and kWidth - 1 lanes, and 1000 runs many full vectors then a tail.
SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 1000]

NAMES = ("exp", "sigmoid", "tanh")
DTYPES = (np.float32, np.float64)
ISAS = _core.build_info()["compiled_isas"]
LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).nmant >= 63


@pytest.fixture(params=ISAS)
def isa(request):
    if request.param not in _core.available_isas():
        pytest.skip(f"this CPU cannot run {request.param}")
    return request.param


def wide_type(dtype):
    return np.float64 if dtype == np.float32 else np.longdouble


def reference(name, x):
    with np.errstate(all="ignore"):
        w = x.astype(wide_type(x.dtype))
        if name == "exp":
            return np.exp(w)
        if name == "tanh":
            return np.tanh(w)
        e = np.exp(-np.abs(w))
        return np.where(w >= 0, 1 / (1 + e), e / (1 + e))


def exponent(v):
    """floor(log2 |v|) for finite nonzero v (float64 or long double), from float64 bits."""
    d = np.abs(v.astype(np.float64))
    e = ((d.view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023
    if v.dtype != np.float64:  # v rounded up to a power of two: one binade lower
        e -= np.abs(v) < power_of_two(e.clip(-1022, 1023))
    return e


def power_of_two(k):
    return ((k + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)  # -1022 <= k <= 1023


def ulp_error(y, v):
    fi = np.finfo(y.dtype)
    with np.errstate(all="ignore"):
        e = np.maximum(exponent(v), fi.minexp) - fi.nmant  # ulp(v) = 2^e; 1/ulp as two float64 factors
        half = -e // 2
        err = np.abs(y.astype(v.dtype) - v) * power_of_two(half) * power_of_two(-e - half)
        err = np.where(np.isinf(y), np.where(v.astype(y.dtype) == y, 0.0, np.inf), err)
        err = np.where(np.isnan(v) & np.isnan(y), 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def neighbours(points, dtype, k=4):
    """Each point and its k nearest representable neighbours either side, both signs."""
    out = []
    for p in np.asarray(points, dtype):
        up = down = p
        out.append(p)
        for _ in range(k):
            up, down = np.nextafter(up, dtype(np.inf)), np.nextafter(down, dtype(-np.inf))
            out += [up, down]
    out = np.array(out, dtype)
    return np.concatenate([out, -out])


def special_values(dtype):
    fi = np.finfo(dtype)
    base = np.array([0.0, fi.smallest_subnormal, fi.smallest_normal * (1 - fi.eps), fi.smallest_normal,
                     1e-30, 1e-20, 1e-10, 1e-4, 0.5, 1.0, 2.0, 1e10, 1e30, fi.max, np.inf], dtype)
    points = [
        np.log(fi.max),  # exp overflows past this
        np.log(fi.smallest_normal),  # exp turns subnormal
        np.log(fi.smallest_subnormal),  # exp underflows to 0 around here
        np.log(fi.smallest_subnormal) - np.log(2.0),
        (fi.nmant + 2) * np.log(2.0),  # sigmoid rounds to 1
        (fi.nmant + 3) * np.log(2.0) / 2,  # tanh rounds to 1: 2 e^-2x = 2^-(nmant + 2)
        0.625,  # tanh: polynomial / exp boundary
        -104.0, 89.0, -746.0, 710.0,  # exp's clamp bounds (float / double)
        87.0, 708.0,  # sigmoid: exp_normal up to here, exp beyond (float / double)
        9.0, 19.0,  # tanh: clamped here for exp_normal (float / double)
    ]
    extra = np.array([np.nan], dtype)
    return np.concatenate([base, -base, neighbours(points, dtype), extra])


def inputs(dtype):
    """Dense grids over the whole range, dense grids over where the functions vary, random
    values, and the special values; both signs."""
    rng = np.random.default_rng(SEED)
    if dtype == np.float32:
        every_4096th = np.arange(0, 0x7F800001, 4096, dtype=np.uint32).view(np.float32)  # 0 .. inf
        grids = [every_4096th, np.linspace(0, 110, 1_000_001, dtype=np.float32),
                 np.linspace(0, 1, 200_001, dtype=np.float32)]
    else:
        grids = [rng.integers(0, 0x7FF0000000000001, 300_000, dtype=np.uint64).view(np.float64),
                 np.linspace(0, 750, 400_001), np.linspace(0, 40, 200_001), np.linspace(0, 1, 100_001),
                 np.geomspace(1e-320, 1, 20_000)]
    x = np.concatenate(grids + [rng.standard_normal(100_000).astype(dtype) * 8])
    return np.concatenate([x, -x, special_values(dtype)])


_INPUTS = {}


def cached_inputs(dtype):
    if dtype not in _INPUTS:
        _INPUTS[dtype] = inputs(dtype)
    return _INPUTS[dtype]


_REFERENCES = {}


def cached_reference(name, dtype):
    if (name, dtype) not in _REFERENCES:
        _REFERENCES[name, dtype] = reference(name, cached_inputs(dtype))
    return _REFERENCES[name, dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_ulp_bound(isa, name, dtype):
    if dtype == np.float64 and not LONG_DOUBLE_IS_WIDER:
        pytest.skip("long double is not wider than double here: no reference for float64")
    x = cached_inputs(dtype)
    y = _core._vmath(name, x, isa)
    assert y.dtype == dtype and y.shape == x.shape
    err = ulp_error(y, cached_reference(name, dtype))
    worst = int(np.argmax(err))
    assert err[worst] <= ULP_BOUND[name, dtype], (
        f"{name}({x[worst]!r}) = {y[worst]!r}: {err[worst]:.3f} ulp > {ULP_BOUND[name, dtype]}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_range_for_every_non_nan_input(isa, name, dtype):
    x = cached_inputs(dtype)
    keep = ~np.isnan(x)
    y = _core._vmath(name, x, isa)[keep]
    assert not np.isnan(y).any(), x[keep][np.isnan(y)][:5]
    lo, hi = {"exp": (0, np.inf), "sigmoid": (0, 1), "tanh": (-1, 1)}[name]
    assert ((y >= lo) & (y <= hi)).all()
    if name != "exp":
        assert np.isfinite(y).all()
    else:  # finite exactly where the true value is representable
        with np.errstate(over="ignore"):
            finite_ref = np.isfinite(cached_reference(name, dtype)[keep].astype(dtype))
        assert (np.isfinite(y) == finite_ref).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(isa, dtype):
    inf, nan = dtype(np.inf), dtype(np.nan)
    x = np.array([inf, -inf, nan, 0.0, -0.0], dtype)
    exp_, sig, tanh_ = (_core._vmath(n, x, isa) for n in NAMES)
    np.testing.assert_array_equal(exp_[:2], [inf, 0.0])
    np.testing.assert_array_equal(sig[:2], [1.0, 0.0])
    np.testing.assert_array_equal(tanh_[:2], [1.0, -1.0])
    assert np.isnan(exp_[2]) and np.isnan(sig[2]) and np.isnan(tanh_[2])
    np.testing.assert_array_equal(exp_[3:], [1.0, 1.0])
    np.testing.assert_array_equal(sig[3:], [0.5, 0.5])
    np.testing.assert_array_equal(tanh_[3:], [0.0, -0.0])
    assert np.signbit(tanh_[4]) and not np.signbit(tanh_[3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_saturation_far_out(isa, dtype):
    fi = np.finfo(dtype)
    # sigmoid: 1 past (nmant + 2) ln 2, 0 where e^x underflows; tanh: +-1 past ~ (nmant + 3) ln2 / 2
    far_sigmoid = 17.0 if dtype == np.float32 else 38.0
    far_tanh = 9.1 if dtype == np.float32 else 19.1
    under = 104.0 if dtype == np.float32 else 746.0
    big = np.array([far_sigmoid, 50.0, 1e3, 1e10, 1e30, fi.max], dtype)
    np.testing.assert_array_equal(_core._vmath("sigmoid", big, isa), 1.0)
    huge = np.array([under, 1e3, 1e10, 1e30, fi.max], dtype)
    huge = huge[huge >= under]
    np.testing.assert_array_equal(_core._vmath("sigmoid", -huge, isa), 0.0)
    np.testing.assert_array_equal(_core._vmath("exp", -huge, isa), 0.0)
    np.testing.assert_array_equal(_core._vmath("exp", huge, isa), np.inf)
    t = np.array([far_tanh, 20.0, 1e3, 1e30, fi.max], dtype)
    np.testing.assert_array_equal(_core._vmath("tanh", t, isa), 1.0)
    np.testing.assert_array_equal(_core._vmath("tanh", -t, isa), -1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relative_accuracy_near_zero_and_far_left(isa, dtype):
    fi = np.finfo(dtype)
    tiny = np.array([1e-20, -1e-20, 1e-30, fi.smallest_normal, fi.smallest_subnormal, -fi.smallest_subnormal], dtype)
    np.testing.assert_array_equal(_core._vmath("tanh", tiny, isa), tiny)  # tanh x = x - x^3/3 rounds to x
    # sigmoid(-80) = 1.8e-35 (normal in float32): relative error a few ulp, no cancellation
    s = _core._vmath("sigmoid", np.array([-80.0], dtype), isa)[0]
    exact = np.exp(np.longdouble(-80)) / (1 + np.exp(np.longdouble(-80)))
    assert abs(np.longdouble(s) / exact - 1) <= ULP_BOUND["sigmoid", dtype] * fi.eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_same_bits_beside_a_far_lane(isa, dtype):
    # A vector with a lane past exp_normal's range (|x| > 87 / 708) takes exp for every lane:
    # each of the others must come out with the bits it has in a vector without one.
    limit = 87.0 if dtype == np.float32 else 708.0
    rng = np.random.default_rng(SEED)
    x = np.concatenate([rng.uniform(-limit, limit, 4096), rng.standard_normal(4096) * 8,
                        neighbours([limit], dtype)]).astype(dtype)
    x = x[np.abs(x) <= limit]
    mixed = np.empty(2 * x.size, dtype)
    mixed[0::2], mixed[1::2] = x, dtype(-2 * limit)  # one far lane beside every value
    np.testing.assert_array_equal(_core._vmath("sigmoid", mixed, isa)[0::2], _core._vmath("sigmoid", x, isa))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_tails_match_full_vectors(isa, name, dtype):
    # Every size, and every element whatever its lane or whether it went through the tail,
    # gives the same bits as in one long call.
    rng = np.random.default_rng(SEED)
    x = (rng.standard_normal(max(SIZES) + 64) * 10).astype(dtype)
    x[::7] = special_values(dtype)[: x[::7].size]
    full = _core._vmath(name, x, isa)
    for n in SIZES:
        for offset in (0, 1, 3):
            y = _core._vmath(name, x[offset : offset + n], isa)
            assert y.shape == (n,)
            np.testing.assert_array_equal(y, full[offset : offset + n], err_msg=f"n={n} offset={offset}")


def test_isas_agree_closely():
    # Same algorithm everywhere: generic differs only by its unfused fma.
    x = np.linspace(-30, 30, 10_001, dtype=np.float32)
    results = {isa: _core._vmath("tanh", x, isa) for isa in _core.available_isas()}
    for isa, y in results.items():
        np.testing.assert_allclose(y, results["generic"], rtol=4 * np.finfo(np.float32).eps, atol=0, err_msg=isa)


def test_hook_shapes_and_errors():
    isa = _core.available_isas()[0]
    x = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]  # 2-D, not contiguous
    y = _core._vmath("exp", x, isa)
    assert y.shape == (3, 2) and y.dtype == np.float64
    np.testing.assert_allclose(y, np.exp(x), rtol=1e-15)
    with pytest.raises(ValueError, match="name"):
        _core._vmath("log", x, isa)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core._vmath("exp", np.arange(4), isa)
    with pytest.raises(ValueError, match="ISA"):
        _core._vmath("exp", x, "sse9")


@pytest.mark.parametrize("dtype", DTYPES)
def test_ulp_error_measure(dtype):
    # The yardstick itself: the correctly rounded value is within 0.5 ulp and k steps away is
    # k +- 0.5 ulp, across binades and subnormals; just below a power of two the ulp is the
    # lower binade's (half the spacing above).
    fi = np.finfo(dtype)
    wide = wide_type(dtype)
    v = np.geomspace(fi.smallest_subnormal * 8, fi.max / 4, 5000).astype(wide)
    v = v[np.frexp(v)[0] < 0.99]  # k steps up stay in v's binade
    y = v.astype(dtype)
    assert (ulp_error(y, v) <= 0.5).all()
    for k in (1, 3):
        z = y.copy()
        for _ in range(k):
            z = np.nextafter(z, dtype(np.inf))
        err = ulp_error(z, v)
        assert ((err >= k - 0.5) & (err <= k + 0.5)).all(), (err.min(), err.max())
    below = np.ldexp(np.ones(60, wide), np.arange(-30, 30)) * (1 - np.finfo(np.longdouble).eps)
    power = below.astype(dtype)  # rounds up to the power of two
    assert (ulp_error(power, below) < 0.01).all()
    np.testing.assert_allclose(ulp_error(np.nextafter(power, dtype(0)), below).astype(np.float64), 1.0, atol=0.01)
    np.testing.assert_allclose(ulp_error(np.nextafter(power, dtype(np.inf)), below).astype(np.float64), 2.0, atol=0.01)
