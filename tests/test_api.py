"""The public API's contract (DESIGN.md §2, §5): initialisation, state_dict ownership, dtype and
layout rules, and bad input -> ValueError / TypeError whose message names the argument.

Semantics decided here: T = 0 is refused (ValueError, as torch does); B = 0 is allowed and
gives empty outputs and zero parameter gradients (as torch does); dtype=None means float32
(PyTorch's meaning); unbatched (T, I) input ignores batch_first (as torch does).
"""
import re

import numpy as np
import pytest

import pyrnn
from helpers import (CELLS, SEED, compare, f32_exact, make_model, native_run, oracle_run,
                     pack_state, state_shapes, unpack_state)
from pyrnn import reference


def lstm(input_size=3, hidden_size=4, **options):
    return make_model("lstm", input_size, hidden_size, **options)


def draw_state(model, rng, batch, unbatched=False, dtype=np.float32):
    h_shape, c_shape = state_shapes(model, batch, unbatched)
    return pack_state(model, rng.standard_normal(h_shape).astype(dtype),
                      None if c_shape is None else rng.standard_normal(c_shape).astype(dtype))


def assert_same(a, b):
    """Bitwise equality of two results (arrays, tuples of arrays or dicts of them)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            if k != "tape":
                assert_same(a[k], b[k])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_same(u, v)
    else:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


# -- initialisation and parameters ------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_default_init_is_uniform_within_bound(cell, dtype):
    model = make_model(cell, 16, 25, dtype, num_layers=2, bidirectional=True)
    values = np.concatenate([v.ravel() for v in model.state_dict().values()])
    assert all(v.dtype == dtype for v in model.state_dict().values())
    bound = 1 / np.sqrt(25)  # hidden_size, also with a projection (as torch)
    assert np.abs(values).max() <= bound
    # >= 7000 samples of U(-1, 1): each quantile within 0.05 of its value by > 6 sigma.
    np.testing.assert_allclose(np.quantile(values / bound, [0.05, 0.25, 0.5, 0.75, 0.95]),
                               [-0.9, -0.5, 0, 0.5, 0.9], atol=0.05)


@pytest.mark.parametrize("cell", CELLS)
def test_seed_reproducible(cell):
    first, again = make_model(cell, 3, 5, seed=7), make_model(cell, 3, 5, seed=7)
    other = make_model(cell, 3, 5, seed=8)
    unseeded = [make_model(cell, 3, 5, seed=None) for _ in range(2)]
    for name, value in first.state_dict().items():
        np.testing.assert_array_equal(value, again.state_dict()[name])
        assert not np.array_equal(value, other.state_dict()[name]), name
        assert not np.array_equal(unseeded[0].state_dict()[name], unseeded[1].state_dict()[name])
    generator = make_model(cell, 3, 5, seed=np.random.default_rng(7))
    for name, value in first.state_dict().items():
        np.testing.assert_array_equal(value, generator.state_dict()[name])


STATE_DICT_CONFIGS = {
    "rnn_relu_3layer_bidir": ("rnn_relu", dict(num_layers=3, bidirectional=True)),
    "lstm_proj_2layer_bidir": ("lstm_proj", dict(num_layers=2, bidirectional=True)),
    "lstm_nobias_2layer": ("lstm", dict(num_layers=2, bias=False)),
    "gru_2layer_bidir_nobias": ("gru", dict(num_layers=2, bidirectional=True, bias=False)),
}


@pytest.mark.parametrize("cell, options", STATE_DICT_CONFIGS.values(), ids=STATE_DICT_CONFIGS.keys())
def test_state_dict_names_shapes_order(cell, options):
    """The oracle's layout, itself checked against torch's state_dict in test_reference.py."""
    model = make_model(cell, 3, 6, **options)
    expected = reference.init_params(cell.split("_")[0], 3, 6, proj_size=model.proj_size,
                                     **options)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == \
        [(k, v.shape) for k, v in expected.items()]


def test_state_dict_is_read_only():
    model = lstm()
    state_dict = model.state_dict()
    before = {k: v.copy() for k, v in state_dict.items()}
    with pytest.raises(ValueError, match="read-only"):
        state_dict["weight_hh_l0"][0, 0] = 1.0
    with pytest.raises(ValueError):
        state_dict["bias_ih_l0"].flags.writeable = True
    state_dict["weight_ih_l0"] = np.zeros((16, 3), np.float32)  # the dict is the caller's
    del state_dict["bias_hh_l0"]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_copies_and_converts():
    model, source = lstm(), lstm(seed=99)
    values = {k: v.astype(np.float64) for k, v in source.state_dict().items()}
    model.load_state_dict(values)
    for value in values.values():
        value[...] = 0  # the caller's arrays: changing them must not change the model
    for name, value in model.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, source.state_dict()[name])
    x = np.ones((2, 1, 3), np.float32)
    assert_same(model(x), source(x))  # the packed copy was refreshed too


@pytest.mark.parametrize("change, match", [
    (lambda d: d.pop("bias_hh_l0"), r"state_dict: missing bias_hh_l0"),
    (lambda d: d.update(weight_hr_l0=np.zeros((2, 4))), r"unexpected weight_hr_l0"),
    (lambda d: d.update(weight_hh_l0=np.zeros((16, 3))),
     re.escape("state_dict['weight_hh_l0']: expected shape (16, 4), got (16, 3)")),
    (lambda d: d.update(bias_ih_l0=np.zeros((1, 16))), r"state_dict\['bias_ih_l0'\]: expected shape"),
], ids=["missing", "extra", "misshaped", "bias_2d"])
def test_load_state_dict_refuses_bad_entries_and_changes_nothing(change, match):
    model = lstm()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(SEED).standard_normal((3, 2, 3)).astype(np.float32)
    y_before = model(x)
    bad = {k: np.full(v.shape, 0.5) for k, v in model.state_dict().items()}
    change(bad)
    with pytest.raises(ValueError, match=match):
        model.load_state_dict(bad)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert_same(model(x), y_before)


@pytest.mark.parametrize("value, match", [
    (np.zeros(16, bool), "bias_hh_l0.*real numbers, got dtype bool"),
    (np.zeros(16, complex), "bias_hh_l0.*real numbers, got dtype complex"),
    ([[0.0], [0.0, 1.0]], "bias_hh_l0.*rectangular"),
    ("sixteen", "bias_hh_l0.*real numbers"),
])
def test_load_state_dict_refuses_non_real_values(value, match):
    model = lstm()
    with pytest.raises(TypeError, match=match):
        model.load_state_dict({**model.state_dict(), "bias_hh_l0": value})
    with pytest.raises(TypeError, match="state_dict: expected a mapping"):
        model.load_state_dict([("bias_hh_l0", np.zeros(16))])


# -- dtypes and layouts -----------------------------------------------------------------------

@pytest.mark.parametrize("input_dtype", [np.float16, np.float64, np.longdouble])
def test_other_float_inputs_are_converted(input_dtype):
    model = make_model("gru", 3, 5)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((4, 2, 3)).astype(input_dtype)
    h0 = rng.standard_normal((1, 2, 5)).astype(input_dtype)
    y, h_n = model(x, h0)
    assert y.dtype == h_n.dtype == np.float32
    assert_same((y, h_n), model(x.astype(np.float32), h0.astype(np.float32)))


def test_float64_model_computes_in_float64():
    rng = np.random.default_rng(SEED)
    model = make_model("lstm_proj", 3, 6, np.float64)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    results = native_run(model, x, dy=rng.standard_normal((4, 2, model.proj_size)))
    assert all(v.dtype == np.float64 for k, v in results.items() if k != "tape")
    assert model.dtype == np.float64 and make_model("gru", 2, 2, dtype=None).dtype == np.float32


@pytest.mark.parametrize("value, match", [
    (np.zeros((2, 2, 3), np.int32), "x: expected a floating-point array, got dtype int32"),
    (np.zeros((2, 2, 3), bool), "x: expected a floating-point array, got dtype bool"),
    (np.zeros((2, 2, 3), np.complex64), "x: expected a floating-point array, got dtype complex64"),
    (np.zeros((2, 2, 3), object), "x: expected a floating-point array, got dtype object"),
    ([[[0.0, 1.0, 2.0]], [[0.0, 1.0]]], "x: expected a rectangular floating-point array"),
    ("x", "x: expected a floating-point array"),
    (None, "x: expected a floating-point array"),
], ids=["int", "bool", "complex", "object", "ragged", "str", "none"])
def test_non_float_input_is_a_type_error(value, match):
    with pytest.raises(TypeError, match=match):
        lstm()(value)


@pytest.mark.parametrize("cell", CELLS)
def test_unbatched_is_batch_of_one(cell):
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, num_layers=2, bidirectional=True)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    h, c = unpack_state(model, draw_state(model, rng, 1, unbatched=True))
    dy = rng.standard_normal((4, 2 * (model.proj_size or 5))).astype(np.float32)
    dh, dc = unpack_state(model, draw_state(model, rng, 1, unbatched=True))
    single = native_run(model, x, pack_state(model, h, c), dy=dy, dstate=pack_state(model, dh, dc))
    add = lambda a: None if a is None else a[:, None]  # noqa: E731
    batched = native_run(model, x[:, None], pack_state(model, add(h), add(c)), dy=dy[:, None],
                         dstate=pack_state(model, add(dh), add(dc)))
    for name, value in single.items():
        if name in ("y", "dx", "h_n", "c_n", "dh0", "dc0"):  # batch axis 1 dropped
            assert_same(value, batched[name][:, 0])
        elif name != "tape":
            assert_same(value, batched[name])
    batch_first = make_model(cell, 3, 5, num_layers=2, bidirectional=True, batch_first=True)
    assert_same(batch_first(x, pack_state(model, h, c)), model(x, pack_state(model, h, c)))


@pytest.mark.parametrize("cell", CELLS)
def test_batch_first_is_the_transpose(cell):
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, num_layers=2)
    batch_first = make_model(cell, 3, 5, num_layers=2, batch_first=True)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    state = draw_state(model, rng, 2)
    dy = rng.standard_normal((4, 2, model.proj_size or 5)).astype(np.float32)
    lengths = np.array([1, 4])
    a = native_run(model, x, state, lengths, dy)
    b = native_run(batch_first, x.transpose(1, 0, 2), state, lengths, dy.transpose(1, 0, 2))
    for name in a:
        if name in ("y", "dx"):
            assert_same(a[name], np.ascontiguousarray(b[name].transpose(1, 0, 2)))
        elif name != "tape":
            assert_same(a[name], b[name])


def strided(a):
    """The same values as a non-contiguous view (every other element of a larger array)."""
    big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def fortran(a):
    return np.asfortranarray(a)


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def reversed_view(a):
    """Negative strides on every axis (the same values)."""
    big = a[tuple(slice(None, None, -1) for _ in a.shape)].copy()
    return big[tuple(slice(None, None, -1) for _ in a.shape)]


def unaligned(a):
    """C-contiguous, but one byte off its dtype's alignment (as np.frombuffer can give)."""
    view = np.frombuffer(bytearray(a.nbytes + 1), a.dtype, a.size, offset=1).reshape(a.shape)
    view[...] = a
    return view


@pytest.mark.parametrize("layout", [strided, fortran, read_only, reversed_view, unaligned])
@pytest.mark.parametrize("cell", ["lstm_proj", "gru"])
def test_views_fortran_and_read_only_arrays_give_the_same_result(cell, layout):
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, bidirectional=True)
    x = rng.standard_normal((4, 3, 3)).astype(np.float32)
    state = draw_state(model, rng, 3)
    dstate = draw_state(model, rng, 3)
    dy = rng.standard_normal((4, 3, 2 * (model.proj_size or 5))).astype(np.float32)
    lengths = np.array([4, 0, 2])
    plain = native_run(model, x, state, lengths, dy, dstate)
    as_layout = lambda s: tuple(layout(a) for a in s) if isinstance(s, tuple) else layout(s)  # noqa: E731
    other = native_run(model, layout(x), as_layout(state), layout(lengths), layout(dy),
                       as_layout(dstate))
    assert_same(plain, other)


# -- bad arguments: ValueError for shapes and values, TypeError for types ---------------------

X = np.zeros((2, 3, 3), np.float32)

BAD_FORWARD = {
    "x_rank_1": (lambda m: m(np.zeros(3)), ValueError, re.escape("x: expected a (T, B, I)") + ".*got shape \\(3,\\)"),
    "x_rank_0": (lambda m: m(np.float32(1)), ValueError, re.escape("got shape ()")),
    "x_rank_4": (lambda m: m(np.zeros((1, 2, 3, 3))), ValueError, re.escape("got shape (1, 2, 3, 3)")),
    "x_features": (lambda m: m(np.zeros((2, 3, 5))), ValueError, "x: expected 3 features \\(input_size\\).*got 5"),
    "x_unbatched_features": (lambda m: m(np.zeros((2, 4))), ValueError, "x: expected 3 features"),
    "x_t0": (lambda m: m(np.zeros((0, 3, 3))), ValueError, "x: expected at least one time step"),
    "state_not_pair": (lambda m: m(X, np.zeros((1, 3, 4))), TypeError, "state: expected None or an \\(h0, c0\\) pair"),
    "state_triple": (lambda m: m(X, (np.zeros((1, 3, 4)),) * 3), TypeError, "state: .*pair"),
    "h0_batch": (lambda m: m(X, (np.zeros((1, 2, 4)), np.zeros((1, 3, 4)))), ValueError,
                 re.escape("h0: expected shape (1, 3, 4), got (1, 2, 4)")),
    "h0_layers": (lambda m: m(X, (np.zeros((2, 3, 4)), np.zeros((1, 3, 4)))), ValueError, "h0: expected shape"),
    "c0_size": (lambda m: m(X, (np.zeros((1, 3, 4)), np.zeros((1, 3, 5)))), ValueError,
                re.escape("c0: expected shape (1, 3, 4), got (1, 3, 5)")),
    "h0_unbatched_for_batched_x": (lambda m: m(X, (np.zeros((1, 4)), np.zeros((1, 3, 4)))), ValueError,
                                   "h0: expected shape"),
    "h0_batched_for_unbatched_x": (lambda m: m(X[:, 0], (np.zeros((1, 1, 4)), np.zeros((1, 4)))), ValueError,
                                   re.escape("h0: expected shape (1, 4), got (1, 1, 4)")),
    "h0_int": (lambda m: m(X, (np.zeros((1, 3, 4), int), np.zeros((1, 3, 4)))), TypeError,
               "h0: expected a floating-point array"),
    "c0_none": (lambda m: m(X, (np.zeros((1, 3, 4)), None)), TypeError, "c0: expected a floating-point array"),
    "lengths_high": (lambda m: m(X, lengths=[1, 3, 2]), ValueError, re.escape("lengths: expected values in [0, 2]") + ".*got 3"),
    "lengths_negative": (lambda m: m(X, lengths=[1, -1, 2]), ValueError, "lengths: expected values in.*got -1"),
    "lengths_count": (lambda m: m(X, lengths=[1, 2]), ValueError, re.escape("lengths: expected shape (3,)")),
    "lengths_2d": (lambda m: m(X, lengths=[[1, 2, 2]]), ValueError, re.escape("lengths: expected shape (3,)")),
    "lengths_float": (lambda m: m(X, lengths=[1.0, 2.0, 2.0]), TypeError, "lengths: expected an integer array, got dtype float64"),
    "lengths_bool": (lambda m: m(X, lengths=[True, True, False]), TypeError, "lengths: expected an integer array, got dtype bool"),
    "lengths_ragged": (lambda m: m(X, lengths=[[1], [1, 2], 2]), TypeError, "lengths: expected a 1-D integer array"),
    "lengths_unbatched": (lambda m: m(X[:, 0], lengths=[2]), ValueError, "lengths: only batched input"),
}


@pytest.mark.parametrize("call, error, match", BAD_FORWARD.values(), ids=BAD_FORWARD.keys())
def test_bad_forward_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(lstm())


def test_gru_and_rnn_state_is_one_array():
    for cell in ("gru", "rnn_tanh"):
        model = make_model(cell, 3, 4)
        with pytest.raises(TypeError, match="state: expected None or an h0 array"):
            model(X, (np.zeros((1, 3, 4)), np.zeros((1, 3, 4))))
        with pytest.raises(TypeError, match="dstate: expected None or a dh_n array"):
            y, _, tape = model.forward(X)
            model.backward(tape, y, [np.zeros((1, 3, 4))])


BAD_CONSTRUCTOR = {
    "hidden_size_0": ("LSTM", dict(hidden_size=0), ValueError, "hidden_size: expected an integer >= 1, got 0"),
    "hidden_size_negative": ("GRU", dict(hidden_size=-3), ValueError, "hidden_size: .*got -3"),
    "hidden_size_float": ("RNN", dict(hidden_size=4.0), TypeError, "hidden_size: expected an integer, got float"),
    "hidden_size_bool": ("RNN", dict(hidden_size=True), TypeError, "hidden_size: expected an integer, got bool"),
    "input_size_0": ("LSTM", dict(input_size=0), ValueError, "input_size: expected an integer >= 1"),
    "input_size_str": ("LSTM", dict(input_size="3"), TypeError, "input_size: expected an integer, got str"),
    "num_layers_0": ("GRU", dict(num_layers=0), ValueError, "num_layers: expected an integer >= 1"),
    "proj_eq_hidden": ("LSTM", dict(proj_size=4), ValueError, "proj_size: expected 0 or less than hidden_size=4, got 4"),
    "proj_gt_hidden": ("LSTM", dict(proj_size=9), ValueError, "proj_size: .*got 9"),
    "proj_negative": ("LSTM", dict(proj_size=-1), ValueError, "proj_size: expected an integer >= 0"),
    "dropout_above_1": ("LSTM", dict(dropout=1.5), ValueError, "dropout: expected a probability in \\[0, 1\\], got 1.5"),
    "dropout_negative": ("GRU", dict(dropout=-0.1), ValueError, "dropout: .*got -0.1"),
    "dropout_nan": ("GRU", dict(dropout=float("nan")), ValueError, "dropout: .*got nan"),
    "dropout_str": ("RNN", dict(dropout="0.5"), TypeError, "dropout: expected a number"),
    "dropout_bool": ("RNN", dict(dropout=True), TypeError, "dropout: expected a number"),
    "nonlinearity": ("RNN", dict(nonlinearity="sigmoid"), ValueError, "nonlinearity: expected 'tanh' or 'relu', got 'sigmoid'"),
    "dtype_float16": ("LSTM", dict(dtype=np.float16), TypeError, "dtype: expected float32 or float64, got float16"),
    "dtype_int": ("LSTM", dict(dtype="int32"), TypeError, "dtype: expected float32 or float64, got int32"),
    "dtype_unknown": ("LSTM", dict(dtype="fast"), TypeError, "dtype: expected float32 or float64, got 'fast'"),
    "seed_str": ("GRU", dict(seed="abc"), TypeError, "seed: expected"),
    "seed_negative": ("GRU", dict(seed=-1), ValueError, "seed: expected"),
}


@pytest.mark.parametrize("kind, options, error, match", BAD_CONSTRUCTOR.values(), ids=BAD_CONSTRUCTOR.keys())
def test_bad_constructor_arguments(kind, options, error, match):
    arguments = {"input_size": 3, "hidden_size": 4, **options}
    with pytest.raises(error, match=match):
        getattr(pyrnn, kind)(**arguments)


def test_proj_size_only_for_lstm():
    with pytest.raises(TypeError, match="proj_size"):
        pyrnn.GRU(3, 4, proj_size=2)


def test_bad_backward_arguments():
    model = lstm()
    y, _, tape = model.forward(X)
    cases = [
        (lambda: model.backward(tape, np.zeros((2, 3, 5))), ValueError,
         re.escape("dy (y's shape): expected shape (2, 3, 4), got (2, 3, 5)")),
        (lambda: model.backward(tape, y[:, :2]), ValueError, "dy \\(y's shape\\): expected shape"),
        (lambda: model.backward(tape, y.astype(int)), TypeError, "dy: expected a floating-point array"),
        (lambda: model.backward(tape, y, np.zeros((1, 3, 4))), TypeError, "dstate: expected None or a \\(dh_n, dc_n\\) pair"),
        (lambda: model.backward(tape, y, (np.zeros((1, 2, 4)), None)), ValueError,
         re.escape("dh_n: expected shape (1, 3, 4), got (1, 2, 4)")),
        (lambda: model.backward(tape, y, (None, np.zeros((2, 3, 4)))), ValueError, "dc_n: expected shape"),
        (lambda: model.backward("tape", y), TypeError, "tape: expected the Tape returned by forward"),
        (lambda: model.backward(None, y), TypeError, "tape: expected the Tape"),
        (lambda: model.backward(lstm(hidden_size=5).forward(X)[2], y), ValueError, "tape: .*another configuration"),
        (lambda: model.backward(make_model("gru", 3, 4).forward(X)[2], y), ValueError, "tape: .*another configuration"),
        (lambda: model.backward(lstm(dtype=np.float64).forward(X)[2], y), ValueError, "tape: .*another configuration"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_set_num_threads_refuses_non_positive_and_absurd_counts():
    previous = pyrnn.get_num_threads()
    for n in (0, -2, 10**6):
        with pytest.raises(ValueError, match=rf"expected 1 <= n <= \d+, got {n}"):
            pyrnn.set_num_threads(n)
        assert pyrnn.get_num_threads() == previous


def test_select_isa_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown ISA 'sse2'"):
        pyrnn._core.select_isa("sse2")


def test_native_stack_refuses_layers_it_could_not_chain():
    """The private one-call path of __call__ (pyrnn._core.StackF32) is built from the model's
    layers; a list it cannot chain is an error, not a crash."""
    layer = make_model("lstm", 2, 3)._native[0]
    for layers, error, match in [([None], TypeError, "expected Layer objects, got None"),
                                 ([], ValueError, "at least one layer"),
                                 ([layer, layer], ValueError, "each taking the one below's y")]:
        with pytest.raises(error, match=match):
            pyrnn._core.StackF32(layers, False)


# -- special values, tapes, threads, empty batches --------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_nan_in_x_gives_nan_outputs_not_a_crash(cell, isa):
    model = make_model(cell, 3, 5)
    x = np.random.default_rng(SEED).standard_normal((4, 2, 3)).astype(np.float32)
    x[1, 0, 2] = np.nan
    y, state = model(x)
    assert np.isnan(y[1:, 0]).all() and np.isfinite(y[:1]).all() and np.isfinite(y[:, 1]).all()
    assert np.isnan(unpack_state(model, state)[0][:, 0]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "lstm_proj", "gru"])  # relu is unbounded
def test_huge_finite_inputs_give_finite_results(cell, dtype, isa):
    model = make_model(cell, 3, 5, dtype, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(SEED)
    x = (1e30 * np.sign(rng.standard_normal((6, 2, 3)))).astype(dtype)
    state = draw_state(model, rng, 2, dtype=dtype)
    results = native_run(model, x, state, dy=np.ones(model(x)[0].shape, dtype))
    for name, value in results.items():
        if name != "tape":
            assert np.isfinite(value).all(), name


def test_one_tape_backpropagated_twice_gives_identical_results():
    rng = np.random.default_rng(SEED)
    model = make_model("lstm_proj", 3, 6, num_layers=2, bidirectional=True)
    y, _, tape = model.forward(rng.standard_normal((5, 2, 3)), lengths=[5, 2])
    dy = rng.standard_normal(y.shape)
    assert_same(model.backward(tape, dy), model.backward(tape, dy))


@pytest.mark.parametrize("cell", CELLS)
def test_tape_keeps_the_weights_of_its_forward(cell, isa):
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, np.float64, num_layers=2)
    x = rng.standard_normal((4, 2, 3))
    dy = rng.standard_normal((4, 2, model.proj_size or 5))
    expected = oracle_run(model, x, dy=dy)
    y, _, tape = model.forward(x)
    model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})
    dx, dstate0, dparams = model.backward(tape, dy)
    actual = {"dx": dx, "dh0": unpack_state(model, dstate0)[0],
              **{"d" + k: v for k, v in dparams.items()}}
    compare(actual, {k: expected[k] for k in actual}, np.float64, "oracle", cell)


def test_tape_keeps_the_input_of_its_forward():
    """A caller may reuse its input buffer after forward (streaming does): backward must use
    the values forward saw."""
    rng = np.random.default_rng(SEED)
    model = make_model("gru", 3, 5)
    for x in (rng.standard_normal((4, 2, 3)).astype(np.float32),
              rng.standard_normal((4, 3)).astype(np.float32)):  # batched and unbatched
        y, _, tape = model.forward(x)
        dy = np.ones_like(y)
        expected = model.backward(tape, dy)
        x[...] = 7.0
        assert_same(model.backward(tape, dy), expected)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(SEED)
    model = make_model("lstm", 40, 40, num_layers=2, bidirectional=True)
    x = rng.standard_normal((12, 5, 40)).astype(np.float32)
    dy = rng.standard_normal((12, 5, 80)).astype(np.float32)
    previous = pyrnn.get_num_threads()
    try:
        pyrnn.set_num_threads(1)
        one = native_run(model, x, lengths=[12, 3, 0, 7, 12], dy=dy)
        pyrnn.set_num_threads(2)
        assert pyrnn.get_num_threads() == 2
        two = native_run(model, x, lengths=[12, 3, 0, 7, 12], dy=dy)
    finally:
        pyrnn.set_num_threads(previous)
    assert_same(one, two)


@pytest.mark.parametrize("cell", CELLS)
def test_empty_batch_gives_empty_results_and_zero_gradients(cell):
    model = make_model(cell, 3, 5, num_layers=2, bidirectional=True)
    x = np.zeros((4, 0, 3), np.float32)
    out = model.proj_size or 5
    results = native_run(model, x, lengths=np.zeros(0, int), dy=np.zeros((4, 0, 2 * out), np.float32))
    assert results["y"].shape == (4, 0, 2 * out) and results["dx"].shape == (4, 0, 3)
    assert results["h_n"].shape == results["dh0"].shape == (4, 0, out)
    for name, value in model.state_dict().items():
        assert results["d" + name].shape == value.shape
        assert not results["d" + name].any(), name


@pytest.mark.parametrize("cell", CELLS)
def test_length_zero_gives_zeros_and_initial_state(cell, isa):
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, bidirectional=True)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    state = draw_state(model, rng, 2)
    dstate = draw_state(model, rng, 2)
    dy = rng.standard_normal((4, 2, 2 * (model.proj_size or 5))).astype(np.float32)
    results = native_run(model, x, state, [0, 4], dy, dstate)
    assert not results["y"][:, 0].any() and not results["dx"][:, 0].any()
    h, c = unpack_state(model, state)
    dh, dc = unpack_state(model, dstate)
    np.testing.assert_array_equal(results["h_n"][:, 0], h[:, 0])
    np.testing.assert_array_equal(results["dh0"][:, 0], dh[:, 0])
    if c is not None:
        np.testing.assert_array_equal(results["c_n"][:, 0], c[:, 0])
        np.testing.assert_array_equal(results["dc0"][:, 0], dc[:, 0])


@pytest.mark.parametrize("cell", CELLS)
def test_padded_steps_of_x_never_enter_the_maths(cell):
    """As with torch's packed sequences (and the oracle): what x holds past a sequence's length
    changes nothing, even NaN or inf."""
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, num_layers=2, bidirectional=True)
    x = rng.standard_normal((4, 3, 3)).astype(np.float32)
    lengths = np.array([4, 1, 0])
    dy = rng.standard_normal((4, 3, 2 * (model.proj_size or 5))).astype(np.float32)
    clean = native_run(model, x, lengths=lengths, dy=dy)
    x[1:, 1] = np.nan
    x[:, 2] = np.inf
    dy[1:, 1] = np.nan
    assert_same(native_run(model, x, lengths=lengths, dy=dy), clean)


def test_projection_gradient_ignores_padded_steps():
    """Leaves NaN in freed heap memory (blocks above glibc's tcache sizes, fenced off from the top
    of the heap so that they stay in the free lists), then trains on padded sequences:
    dweight_hr must stay finite, whatever the allocator hands the tape."""
    model = make_model("lstm", 4, 32, proj_size=3)
    x = np.random.default_rng(SEED).standard_normal((6, 4, 4)).astype(np.float32)
    lengths = np.array([6, 0, 2, 5])
    finite = []
    for _ in range(10):
        pool = [np.full(1024 + 16 * k, np.nan, np.float32) for k in range(24)]
        fence = np.ones(2048, np.float32)
        del pool
        results = native_run(model, x, lengths=lengths, dy=np.ones((6, 4, 3), np.float32))
        finite.append(bool(np.isfinite(results["dweight_hr_l0"]).all()))
        del fence
    assert all(finite), finite
