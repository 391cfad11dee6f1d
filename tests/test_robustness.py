"""Numerical robustness: non-finite padding that changes nothing."""
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
