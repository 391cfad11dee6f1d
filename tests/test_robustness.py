"""Numerical robustness: a 10,000-step sequence (and the README's tape size for it), saturation
under huge finite inputs, NaN confined to the sequence it was fed to, non-finite padding that
changes nothing, and finite gradients through 1,000 steps with the default initialisation."""
import numpy as np
import pytest

import pyrnn

CELLS = {
    "lstm": dict(cls=pyrnn.LSTM, kw={}),
    "lstm_proj": dict(cls=pyrnn.LSTM, kw=dict(proj_size=3)),
    "gru": dict(cls=pyrnn.GRU, kw={}),
    "rnn_tanh": dict(cls=pyrnn.RNN, kw=dict(nonlinearity="tanh")),
    "rnn_relu": dict(cls=pyrnn.RNN, kw=dict(nonlinearity="relu")),
}
# Cells whose output is a tanh (times a gate, or a convex combination of tanh and the previous
# output), so bounded by 1 in absolute value whatever the input.
TANH_CELLS = ["lstm", "gru", "rnn_tanh"]
GATES = {pyrnn.LSTM: 4, pyrnn.GRU: 3, pyrnn.RNN: 1}


def make(name, *args, **kw):
    return CELLS[name]["cls"](*args, **CELLS[name]["kw"], **kw)


def split_state(model, state):
    return state if isinstance(model, pyrnn.LSTM) else (state, None)


def readme_tape_nbytes(model, steps, batch):
    """README "Memory": per layer sizeof(dtype) * T*B*D * (G*H + Hout + [LSTM] 2H + [proj] H +
    [GRU] H) + 8*B bytes, and tape.nbytes adds the layer inputs (and dropout masks, none here)."""
    size = model.dtype.itemsize
    H, P, D = model.hidden_size, model.proj_size, 2 if model.bidirectional else 1
    Hout = P or H
    per_step = GATES[type(model)] * H + Hout
    per_step += 2 * H if isinstance(model, pyrnn.LSTM) else 0
    per_step += H if P else 0
    per_step += H if isinstance(model, pyrnn.GRU) else 0
    total = 0
    for layer in range(model.num_layers):
        layer_input = model.input_size if layer == 0 else D * Hout
        total += size * steps * batch * D * per_step + 8 * batch
        total += size * steps * batch * layer_input
    return total


# -- a long sequence ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, topology", [
    ("lstm", dict()),
    ("lstm_proj", dict(bidirectional=True)),
    ("gru", dict(num_layers=2)),
    ("rnn_tanh", dict(bidirectional=True, dtype=np.float64)),
])
def test_ten_thousand_steps_run_and_the_tape_has_the_readme_size(rng, name, topology):
    steps, batch, inputs, hidden = 10_000, 2, 3, 8
    model = make(name, inputs, hidden, seed=0, **topology)
    x = rng.standard_normal((steps, batch, inputs)).astype(model.dtype)
    y, state, tape = model.forward(x)
    assert tape.nbytes == readme_tape_nbytes(model, steps, batch)
    assert np.isfinite(y).all()
    dx, _, dparams = model.backward(tape, rng.standard_normal(y.shape))
    assert np.isfinite(dx).all() and all(np.isfinite(g).all() for g in dparams.values())
    # Inference over the same sequence gives the same output as the training forward.
    y_inference, _ = model(x)
    np.testing.assert_array_equal(y_inference, y)


# -- saturation --------------------------------------------------------------------------------
HUGE = {np.float32: [1e30, 3e38], np.float64: [1e300, 1.7e308]}


@pytest.mark.parametrize("name", TANH_CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_finite_inputs_saturate_to_finite_outputs_within_one(isa, rng, name, dtype):
    steps, batch, inputs, hidden = 7, 6, 9, 21
    model = make(name, inputs, hidden, dtype=dtype, bidirectional=True, seed=1)
    for magnitude in HUGE[dtype]:
        # Per row: all +huge, all -huge, mixed signs, huge next to ordinary values.
        x = np.empty((steps, batch, inputs), dtype=dtype)
        x[:, 0], x[:, 1] = magnitude, -magnitude
        x[:, 2] = magnitude * rng.choice([-1.0, 1.0], size=(steps, inputs))
        x[:, 3] = rng.standard_normal((steps, inputs))
        x[::2, 3, ::3] = magnitude
        x[:, 4:] = magnitude * rng.uniform(-1, 1, size=(steps, batch - 4, inputs))
        y, state = model(x)
        h_n, c_n = split_state(model, state)
        for label, value in [("y", y), ("h_n", h_n)]:
            assert np.isfinite(value).all(), f"{label} not finite for |x| = {magnitude:g}"
            assert np.abs(value).max() <= 1, f"{label} outside [-1, 1] for |x| = {magnitude:g}"
        if c_n is not None:  # |c| grows by at most 1 per step
            assert np.isfinite(c_n).all() and np.abs(c_n).max() <= steps + 1


# -- NaN stays in its sequence -----------------------------------------------------------------
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_nan_in_one_sequence_leaves_the_others_bitwise_unchanged(isa, rng, name, bidirectional):
    steps, batch, inputs, hidden, t0, bad = 8, 7, 5, 19, 3, 2
    model = make(name, inputs, hidden, bidirectional=bidirectional, seed=2)
    x = rng.standard_normal((steps, batch, inputs)).astype(np.float32)
    y, state, tape = model.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dstate0, _ = model.backward(tape, dy)
    h_n = split_state(model, state)[0]
    dh0 = split_state(model, dstate0)[0]

    x_nan = x.copy()
    x_nan[t0, bad, 1] = np.nan
    y2, state2, tape2 = model.forward(x_nan)
    dx2, dstate02, _ = model.backward(tape2, dy)
    h_n2 = split_state(model, state2)[0]
    dh02 = split_state(model, dstate02)[0]

    others = [b for b in range(batch) if b != bad]
    for label, clean, dirty, axis in [("y", y, y2, 1), ("h_n", h_n, h_n2, 1), ("dx", dx, dx2, 1),
                                      ("dh0", dh0, dh02, 1)]:
        np.testing.assert_array_equal(np.take(dirty, others, axis), np.take(clean, others, axis),
                                      err_msg=f"{label} of the other sequences changed")
    out = y.shape[2] // (2 if bidirectional else 1)
    assert np.isnan(y2[t0:, bad, :out]).all(), "forward direction: NaN from step t0 on"
    np.testing.assert_array_equal(y2[:t0, bad, :out], y[:t0, bad, :out])
    if bidirectional:
        assert np.isnan(y2[:t0 + 1, bad, out:]).all(), "reverse direction: NaN up to step t0"
        np.testing.assert_array_equal(y2[t0 + 1:, bad, out:], y[t0 + 1:, bad, out:])
    assert np.isnan(h_n2[:, bad]).all()


# -- padding never enters the maths ------------------------------------------------------------
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("topology", [dict(), dict(bidirectional=True, num_layers=2)], ids=["uni", "bidir2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_padding_changes_nothing(isa, rng, name, topology, dtype):
    """Regression: x at padded steps used to enter dW_ih = d_pre^T X as 0 * x, so NaN or inf
    there made the weight gradients of the whole batch NaN; and h0 of an empty sequence entered
    dW_hh the same way through the tape."""
    steps, batch, inputs, hidden = 6, 5, 4, 11
    model = make(name, inputs, hidden, dtype=dtype, seed=3, **topology)
    lstm = isinstance(model, pyrnn.LSTM)
    lengths = np.array([6, 0, 3, 1, 5])
    padded = np.arange(steps)[:, None] >= lengths[None, :]
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    x[padded] = 0
    rows = model.num_layers * (2 if model.bidirectional else 1)
    h0 = rng.standard_normal((rows, batch, model.proj_size or hidden)).astype(dtype)
    c0 = rng.standard_normal((rows, batch, hidden)).astype(dtype)

    def run(x, h0, c0):
        y, state, tape = model.forward(x, (h0, c0) if lstm else h0, lengths)
        dy = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
        dh_n = np.random.default_rng(1).standard_normal(h0.shape).astype(dtype)
        dx, dstate0, dparams = model.backward(tape, dy, (dh_n, None) if lstm else dh_n)
        return y, split_state(model, state)[0], dx, split_state(model, dstate0)[0], dparams

    clean = run(x, h0, c0)
    x_bad, h0_bad, c0_bad = x.copy(), h0.copy(), c0.copy()
    x_bad[padded] = np.where(rng.random(x_bad[padded].shape) < 0.5, np.nan, np.inf)
    h0_bad[:, 1], c0_bad[:, 1] = np.nan, -np.inf          # sequence 1 is empty: h0 never used
    dirty = run(x_bad, h0_bad, c0_bad)

    for label, a, b in zip(["y", "h_n", "dx", "dh0"], clean[:4], dirty[:4]):
        if label == "h_n":  # an empty sequence's h_n is its h0
            assert np.isnan(b[:, 1]).all()
            a, b = np.delete(a, 1, axis=1), np.delete(b, 1, axis=1)
        np.testing.assert_array_equal(b, a, err_msg=label)
    for key in clean[4]:
        np.testing.assert_array_equal(dirty[4][key], clean[4][key], err_msg=key)


# -- long backpropagation ----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_through_a_thousand_steps_are_finite(rng, name, dtype):
    steps, batch, inputs, hidden = 1000, 3, 8, 16
    model = make(name, inputs, hidden, dtype=dtype, seed=4)
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    y, state, tape = model.forward(x)
    dy = np.zeros_like(y)
    dy[-1] = 1                       # only the last step's output: the gradient must cross 1,000 steps
    h_n = split_state(model, state)[0]
    dx, dstate0, dparams = model.backward(tape, dy, (np.ones_like(h_n), None) if isinstance(model, pyrnn.LSTM)
                                          else np.ones_like(h_n))
    assert np.isfinite(y).all()
    for label, g in [("dx", dx), ("dh0", split_state(model, dstate0)[0]), *dparams.items()]:
        assert np.isfinite(g).all(), f"{label} not finite"
    assert np.abs(dparams[f"weight_hh_l0"]).max() > 0
