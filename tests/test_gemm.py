"""The per-ISA GEMM (csrc/gemm/) against a float64 NumPy oracle, through the private _core._gemm hook,
and the layer code that reaches its beta != 0 path against torch.nn.LSTM autograd.

Tolerance: |C - C_ref| <= (k + 2) * eps * (|op(A)| @ |B|) elementwise, the rigorous bound for a
length-k dot product summed in any order (fused or not), eps the dtype's unit roundoff. A kernel
that drops, repeats or misplaces one term misses it by far. _gemm pre-fills C with NaN and runs
with beta = 0, so a kernel that reads C when it must not shows NaN. Seeds: fixed per test.
"""
import numpy as np
import pytest

from pyrnn import _core

ISAS = _core.available_isas()
DTYPES = [np.float32, np.float64]


def blocking(isa, dtype):
    return _core._gemm_config(isa, np.dtype(dtype).name)


def edge_shapes(cfg):
    """(name, m, n, k) probing every path and edge of one ISA's blocking: the streaming path for
    m <= stream_max_m (row blocks of stream_rows, column chunks of stream_cols) and the packed
    path above it (MR x NR tiles, KC / MC / NC blocks; narrow_mr x narrow_nr when n is small)."""
    mr, nr, kc, mc, nc = cfg["mr"], cfg["nr"], cfg["kc"], cfg["mc"], cfg["nc"]
    smax, srows, scols = cfg["stream_max_m"], cfg["stream_rows"], cfg["stream_cols"]
    return [
        ("scalar", 1, 1, 1),
        ("b1_k1", 1, scols + 3, 1),
        ("b1_k_gt_kc", 1, 3 * nr + 5, kc + 1),
        ("b_lt_srows", srows - 1, 2 * nr - 1, 50),
        ("b_eq_srows_chunk_plus", srows, scols + 1, 33),
        ("b_gt_srows_k_2kc", srows + 1, scols - 1, 2 * kc + 3),
        ("b_eq_smax", smax, 5 * nr + 1, 300),
        ("m_gt_smax_k1", smax + 1, nr + 1, 1),
        ("m_gt_smax_n_lt_nr", smax + 1, nr - 1, 20),
        ("m_tiles_plus_1_n_gt_nr_k_gt_kc", (smax // mr + 1) * mr + 1, nr + 1, kc + 1),
        ("n1", smax + 7, 1, 9),
        ("narrow_n1_k_gt_kc", 3 * cfg["narrow_mr"] + 1, 1, kc + 3),
        ("narrow_n_lt_nr", smax + cfg["narrow_mr"] - 1, cfg["narrow_nr"] - 1, 40),
        ("narrow_n_eq_nr", smax + 1, cfg["narrow_nr"], 17),
        ("narrow_n_gt_nr", smax + 2 * cfg["narrow_mr"], cfg["narrow_nr"] + 1, 70),
        ("large_crosses_mc_nc", mc + mr + 3, nc + nr + 1, kc + 5),
    ]


def oracle(a, b, transpose_a):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    op_a = a64.T if transpose_a else a64
    return op_a @ b64, np.abs(op_a) @ np.abs(b64)


def operands(rng, m, n, k, transpose_a, dtype):
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    return a, b


CASES = [
    pytest.param(isa, dtype, i, id=f"{isa}-{np.dtype(dtype).name}-{name}")
    for isa in ISAS
    for dtype in DTYPES
    for i, (name, *_) in enumerate(edge_shapes(blocking(isa, dtype)))
]


@pytest.mark.parametrize("transpose_a", [False, True], ids=["nn", "tn"])
@pytest.mark.parametrize("isa,dtype,case", CASES)
def test_gemm_matches_oracle(isa, dtype, case, transpose_a):
    _, m, n, k = edge_shapes(blocking(isa, dtype))[case]
    rng = np.random.default_rng(1000 + case)
    a, b = operands(rng, m, n, k, transpose_a, dtype)
    c = _core._gemm(a, b, transpose_a, isa, 2)
    assert c.shape == (m, n) and c.dtype == dtype
    assert np.isfinite(c).all(), "NaN from the pre-filled C leaked: beta = 0 must not read C"
    ref, magnitude = oracle(a, b, transpose_a)
    bound = (k + 2) * np.finfo(dtype).eps / 2 * magnitude
    excess = np.abs(c - ref) - bound
    assert excess.max() <= 0, f"worst error exceeds the bound by {excess.max():.3g}"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_special_values_stay_in_their_row_and_column(isa, dtype):
    cfg = blocking(isa, dtype)
    for m in (1, cfg["mr"] + 3, 64):
        rng = np.random.default_rng(7)
        m_, n, k = m, 2 * cfg["nr"] + 3, cfg["kc"] + 9
        a, b = operands(rng, m_, n, k, False, dtype)
        a[m_ - 1, 5] = np.nan
        b[k - 1, n - 1] = np.inf
        a[:, k - 1] = np.where(np.arange(m_) == 0, 1.0, 0.5)  # the inf column meets finite weights
        c = _core._gemm(a, b, False, isa, 1)
        assert np.isnan(c[m_ - 1]).all()
        assert np.isposinf(c[: m_ - 1, n - 1]).all()
        assert np.isfinite(c[: m_ - 1, : n - 1]).all()
        # 0 * x summed from +0 is +0 whatever the sign of x.
        zero = _core._gemm(np.zeros_like(a), np.ascontiguousarray(b[:, : n - 1]), False, isa, 1)
        assert (zero == 0).all() and not np.signbit(zero).any()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_threads_give_identical_bits(isa, dtype):
    cfg = blocking(isa, dtype)
    rng = np.random.default_rng(3)
    shapes = [(1, 777, 600), (cfg["stream_rows"] + 3, 1000, 300), (cfg["stream_max_m"], 500, cfg["kc"] + 9),
              (cfg["stream_max_m"] + 1, 2 * cfg["nr"] * 9 + 5, 513),
              (4 * 2 * cfg["mr"] + 5, 300, cfg["kc"] * 2 + 1), (300, cfg["nc"] + 70, 200),
              (500, cfg["narrow_nr"] + 3, cfg["kc"] + 1)]
    for m, n, k in shapes:
        for transpose_a in (False, True):
            a, b = operands(rng, m, n, k, transpose_a, dtype)
            one = _core._gemm(a, b, transpose_a, isa, 1)
            for threads in (2, 3):
                assert np.array_equal(one, _core._gemm(a, b, transpose_a, isa, threads)), (m, n, k, threads)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_row_does_not_depend_on_the_batch(isa, dtype):
    # The streaming (m <= stream_max_m) and packed paths share their per-element arithmetic (an FMA
    # chain from zero over each KC block, blocks added in order), so a row's bits do not depend on
    # how many other rows are in the product nor on the path it takes.
    cfg = blocking(isa, dtype)
    rng = np.random.default_rng(5)
    k, n = 2 * cfg["kc"] + 7, 333
    a, b = operands(rng, 2 * cfg["stream_max_m"], n, k, False, dtype)
    full = _core._gemm(a, b, False, isa, 1)
    for m in (1, 2, cfg["stream_rows"] + 1, cfg["stream_max_m"], cfg["stream_max_m"] + 1):
        assert np.array_equal(_core._gemm(a[:m], b, False, isa, 1), full[:m]), m


def test_rejects_bad_arguments():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="op\\(a\\)"):
        _core._gemm(a, np.ones((5, 2), np.float32), False, ISAS[0], 1)
    with pytest.raises(TypeError):
        _core._gemm(a, np.ones((4, 2), np.float64), False, ISAS[0], 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._gemm(np.ones((4, 3), np.float32).T, np.ones((4, 2), np.float32), False, ISAS[0], 1)
    with pytest.raises(ValueError, match="unknown ISA"):
        _core._gemm(a, np.ones((4, 2), np.float32), False, "sse9", 1)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("batch", [1, 5, 70])
def test_layer_uses_gemm_correctly(isa, dtype, batch):
    """LSTM forward and BPTT (input projection, per-step products, dh += d_pre W_hh with beta = 1,
    and the transposed weight-gradient products) against torch.nn.LSTM autograd. Batch 70 is above
    every ISA's stream_max_m, so beta = 1 reaches the packed path too."""
    torch = pytest.importorskip("torch")
    steps, in_size, hidden = 6, 37, 45  # 4H = 180 gate rows: not a multiple of any NR
    rng = np.random.default_rng(11 + batch)
    w_ih, w_hh = (rng.uniform(-0.3, 0.3, (4 * hidden, s)).astype(dtype) for s in (in_size, hidden))
    b_ih, b_hh = (rng.uniform(-0.3, 0.3, 4 * hidden).astype(dtype) for _ in range(2))
    x = rng.standard_normal((steps, batch, in_size)).astype(dtype)
    h0, c0 = (rng.standard_normal((1, batch, hidden)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    dh_n, dc_n = (rng.standard_normal((1, batch, hidden)).astype(dtype) for _ in range(2))

    previous = _core.active_isa()
    _core.select_isa(isa)
    try:
        cls = _core.LayerF32 if dtype == np.float32 else _core.LayerF64
        layer = cls("lstm", in_size, hidden, 0, 1, True, [w_ih], [w_hh], [b_ih], [b_hh], [])
        y, h_n, c_n, tape = layer.forward(x, h0, c0, None, True)
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, _ = tape.backward(x, dy, dh_n, dc_n)
    finally:
        _core.select_isa(previous)

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    lstm = torch.nn.LSTM(in_size, hidden).to(tdtype)
    with torch.no_grad():
        for name, value in [("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih),
                            ("bias_hh_l0", b_hh)]:
            getattr(lstm, name).copy_(torch.from_numpy(value))
    tx, th0, tc0 = (torch.from_numpy(v).requires_grad_() for v in (x, h0, c0))
    ty, (thn, tcn) = lstm(tx, (th0, tc0))
    loss = (ty * torch.from_numpy(dy)).sum() + (thn * torch.from_numpy(dh_n)).sum() + \
        (tcn * torch.from_numpy(dc_n)).sum()
    loss.backward()

    tol = dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
    pairs = [("y", y, ty), ("h_n", h_n, thn), ("c_n", c_n, tcn), ("dx", dx, tx.grad), ("dh0", dh0, th0.grad),
             ("dc0", dc0, tc0.grad), ("dw_ih", dw_ih, lstm.weight_ih_l0.grad),
             ("dw_hh", dw_hh, lstm.weight_hh_l0.grad), ("db_ih", db_ih, lstm.bias_ih_l0.grad),
             ("db_hh", db_hh, lstm.bias_hh_l0.grad)]
    for name, ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), err_msg=name, **tol)
