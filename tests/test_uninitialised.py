"""Native forward and backward against the oracle over the features that shape the kernels'
workspace and padding: every cell, projection, both directions, stacks, no bias, lengths of 0,
partial and full, hidden sizes that are not multiples of any vector width, one and several
kernel threads, both dtypes, every ISA.

In sanitizer builds (.ci/sanitize.sh) every fresh native buffer and output array starts as NaN
(PYRNN_POISON_UNINITIALISED), so a kernel that reads memory it never wrote, or leaves part of an
output unwritten, turns the result into NaN and fails here. That is how the projection-tape bug
of 25436c6 (dW_hr read the uninitialised tape at padded steps) would have shown. In release builds
the same tests check the values.
"""
import numpy as np
import pytest

import pyrnn
from helpers import F32_GRAD_RTOL, F32_OUT_RTOL, F64_RTOL, rel_err
from pyrnn import reference

NETS = {
    "lstm": dict(cls=pyrnn.LSTM, cell="lstm", kw={}),
    "lstm_proj": dict(cls=pyrnn.LSTM, cell="lstm", kw=dict(proj_size=5)),
    "gru": dict(cls=pyrnn.GRU, cell="gru", kw={}),
    "rnn_tanh": dict(cls=pyrnn.RNN, cell="rnn", kw=dict(nonlinearity="tanh")),
    "rnn_relu": dict(cls=pyrnn.RNN, cell="rnn", kw=dict(nonlinearity="relu")),
}
TOPOLOGIES = {
    "uni": dict(num_layers=1, bidirectional=False, bias=True),
    "bidir_2layers": dict(num_layers=2, bidirectional=True, bias=True),
    "bidir_nobias": dict(num_layers=1, bidirectional=True, bias=False),
}
# (T, B, I, H, kernel threads). "threaded" is large enough that the recurrences split their unit
# blocks between two threads; H is odd in both, so the last unit block is partly padding.
SIZES = {
    "small": (6, 7, 5, 19, 1),
    "threaded": (5, 9, 12, 71, 2),
}


@pytest.fixture
def restore_threads():
    previous = pyrnn.get_num_threads()
    yield
    pyrnn.set_num_threads(previous)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_output_and_gradient_matches_the_oracle(isa, restore_threads, rng, name, topology, size, dtype):
    net, topo = NETS[name], TOPOLOGIES[topology]
    steps, batch, inputs, hidden, threads = SIZES[size]
    pyrnn.set_num_threads(threads)
    model = net["cls"](inputs, hidden, dtype=dtype, seed=rng, **topo, **net["kw"])  # reproducible, as the data
    params = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    options = dict(num_layers=topo["num_layers"], bidirectional=topo["bidirectional"],
                   proj_size=net["kw"].get("proj_size", 0), nonlinearity=net["kw"].get("nonlinearity", "tanh"))
    rows = topo["num_layers"] * (2 if topo["bidirectional"] else 1)
    out = options["proj_size"] or hidden
    lstm = net["cell"] == "lstm"

    x = rng.standard_normal((steps, batch, inputs))
    h0 = rng.standard_normal((rows, batch, out))
    c0 = rng.standard_normal((rows, batch, hidden)) if lstm else None
    lengths = np.resize([steps, 0, 1, steps - 2, steps - 1], batch)   # full, empty, partial
    y_ref, h_ref, c_ref, cache = reference.forward(net["cell"], params, x, h0, c0, lengths=lengths, **options)
    dy = rng.standard_normal(y_ref.shape)
    dh_n = rng.standard_normal(h_ref.shape)
    dc_n = rng.standard_normal(c_ref.shape) if lstm else None
    dx_ref, dh0_ref, dc0_ref, dparams_ref = reference.backward(cache, dy, dh_n, dc_n)

    cast = (lambda a: None if a is None else a.astype(dtype))
    state = (cast(h0), cast(c0)) if lstm else cast(h0)
    dstate = (cast(dh_n), cast(dc_n)) if lstm else cast(dh_n)
    y, state_n, tape = model.forward(cast(x), state, lengths)
    dx, dstate0, dparams = model.backward(tape, cast(dy), dstate)
    h_n, c_n = state_n if lstm else (state_n, None)
    dh0, dc0 = dstate0 if lstm else (dstate0, None)

    out_rtol, grad_rtol = (F64_RTOL, F64_RTOL) if dtype == np.float64 else (F32_OUT_RTOL, F32_GRAD_RTOL)
    pairs = [("y", y, y_ref, out_rtol), ("h_n", h_n, h_ref, out_rtol), ("dx", dx, dx_ref, grad_rtol),
             ("dh0", dh0, dh0_ref, grad_rtol)]
    if lstm:
        pairs += [("c_n", c_n, c_ref, out_rtol), ("dc0", dc0, dc0_ref, grad_rtol)]
    pairs += [(k, dparams[k], dparams_ref[k], grad_rtol) for k in dparams_ref]
    for label, got, want, rtol in pairs:
        assert got.dtype == dtype, label
        assert np.isfinite(got).all(), f"{label}: non-finite values (memory read or left unwritten?)"
        assert rel_err(got, want) <= rtol, f"{label}: relative error {rel_err(got, want):.2e} > {rtol:.0e}"
    # Padded steps are exactly zero in y and in dx.
    padded = np.arange(steps)[:, None] >= lengths[None, :]
    assert not y[padded].any() and not dx[padded].any()
