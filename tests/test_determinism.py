"""Bitwise determinism: the same numbers for any thread count, and for a sequence whether it is
scored alone or inside a batch (batch invariance), forward and backward, on every ISA."""
import numpy as np
import pytest

import pyrnn

CONFIGS = {
    "lstm": dict(cls=pyrnn.LSTM, kw={}),
    "lstm_proj_bidir": dict(cls=pyrnn.LSTM, kw=dict(proj_size=7, bidirectional=True)),
    # Over four float32 vectors of outputs: one thread multiplies them by a 4-vector tile and a
    # masked one, more threads by masked tiles of their shares (sequence/step_product.h).
    "lstm_proj_wide": dict(cls=pyrnn.LSTM, kw=dict(proj_size=71)),
    "gru_bidir_2layers": dict(cls=pyrnn.GRU, kw=dict(bidirectional=True, num_layers=2)),
    "rnn_relu": dict(cls=pyrnn.RNN, kw=dict(nonlinearity="relu")),
}
# Large enough that the kernels split the work between threads (H spans several unit blocks),
# and a batch that takes other tiles than a sequence alone (GRU with H > 128: two-block tiles
# under 8 rows, one-block tiles from 8; LSTM with AVX2: two-block tiles for one row, one-block
# tiles for more).
STEPS, BATCH, INPUT, HIDDEN = 9, 9, 24, 136


@pytest.fixture
def restore_threads():
    previous = pyrnn.get_num_threads()
    yield
    pyrnn.set_num_threads(previous)


def run(model, x, lengths, dy):
    y, state, tape = model.forward(x, None, lengths)
    dx, dstate0, dparams = model.backward(tape, dy)
    states = state if isinstance(state, tuple) else (state,)
    return [y, *states, dx, *dparams.values()]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_does_not_change_a_bit(isa, restore_threads, rng, name, dtype):
    config = CONFIGS[name]
    model = config["cls"](INPUT, HIDDEN, dtype=dtype, seed=3, **config["kw"])
    x = rng.standard_normal((STEPS, BATCH, INPUT)).astype(dtype)
    lengths = rng.integers(0, STEPS + 1, BATCH)
    y, _, _ = model.forward(x, None, lengths)
    dy = rng.standard_normal(y.shape).astype(dtype)
    results = {}
    for threads in (1, 2, 3, 4):  # 4: both directions of a bidirectional layer on two threads each
        pyrnn.set_num_threads(threads)
        results[threads] = run(model, x, lengths, dy)
    for threads in (2, 3, 4):
        for i, (a, b) in enumerate(zip(results[1], results[threads])):
            np.testing.assert_array_equal(a, b, err_msg=f"{threads} threads differ from 1 in result {i}")


@pytest.mark.parametrize("name", CONFIGS)
def test_a_sequence_alone_equals_it_inside_a_batch(isa, rng, name):
    config = CONFIGS[name]
    model = config["cls"](INPUT, HIDDEN, seed=4, **config["kw"])
    x = rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32)
    lengths = rng.integers(1, STEPS + 1, BATCH)
    y_batch, state_batch, _ = model.forward(x, None, lengths, training=False)
    h_batch = state_batch[0] if isinstance(state_batch, tuple) else state_batch
    for b in range(BATCH):
        y_alone, state_alone, _ = model.forward(x[:, b:b + 1], None, lengths[b:b + 1], training=False)
        h_alone = state_alone[0] if isinstance(state_alone, tuple) else state_alone
        np.testing.assert_array_equal(y_alone[:, 0], y_batch[:, b], err_msg=f"y of sequence {b}")
        np.testing.assert_array_equal(h_alone[:, 0], h_batch[:, b], err_msg=f"h_n of sequence {b}")


@pytest.mark.parametrize("cls", [pyrnn.LSTM, pyrnn.GRU, pyrnn.RNN])
def test_batch_invariance_across_gemm_paths(isa, rng, cls):
    """Alone, the input projection has T*1 = 40 rows (the GEMM's no-packing path for m <= 64);
    in the batch it has T*3 = 120 (the packed path): the bits must not change."""
    model = cls(40, 40, seed=5)
    x = rng.standard_normal((40, 3, 40)).astype(np.float32)
    y_batch, _ = model(x)
    for b in range(3):
        np.testing.assert_array_equal(model(x[:, b:b + 1])[0][:, 0], y_batch[:, b])


@pytest.mark.parametrize("name", CONFIGS)
def test_small_input_projection_routes_agree(isa, restore_threads, rng, name):
    """With I = 1 and T*B = 80 rows, the first layer's product is too small for the GEMM to split:
    on one thread the GEMM projects it, on more the recurrence's threads project their own
    columns (in the batch of 3, 240 rows, the GEMM splits it again, but for the RNN). Forward and
    backward must give the same bits, and the sequence alone the bits it has in the batch."""
    config = CONFIGS[name]
    model = config["cls"](1, HIDDEN, seed=6, **config["kw"])
    x = rng.standard_normal((80, 3, 1)).astype(np.float32)
    y, _, _ = model.forward(x[:, :1])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    lengths = np.array([80])
    results = {}
    for threads in (1, 2, 3, 4):
        pyrnn.set_num_threads(threads)
        results[threads] = run(model, x[:, :1], lengths, dy)
    for threads in (2, 3, 4):
        for i, (a, b) in enumerate(zip(results[1], results[threads])):
            np.testing.assert_array_equal(a, b, err_msg=f"{threads} threads differ from 1 in result {i}")
    y_batch, _ = model(x)
    np.testing.assert_array_equal(results[2][0][:, 0], y_batch[:, 0])
