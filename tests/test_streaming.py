"""Streaming: a sequence fed in chunks, carrying the state from one call to the next, and
backpropagation through time across chunks, whole or truncated.

How a user truncates BPTT (train on a long stream, chunk by chunk, with a bounded memory):

    state = None
    for x_chunk, target in stream:
        y, state, tape = m.forward(x_chunk, state)             # state: the previous chunk's h_n
        dy = loss_gradient(y, target)
        dx, _, dparams = m.backward(tape, dy, dstate=None)     # dstate=None: no gradient enters
        optimiser_step(m, dparams)                              # from later chunks
        # `state` carries the values on; passing it back into forward treats it as a constant,
        # so the gradient stops at the chunk boundary. (Each forward needs its own tape; the
        # previous chunk's tape can be dropped.)

For full BPTT across chunks, keep every chunk's tape and run the backwards from the last chunk
to the first, passing each chunk's dstate0 as the dstate of the chunk before it; the parameter
gradients of the chunks add up to those of one call on the whole sequence.
A bidirectional layer cannot stream (its reverse direction needs the end of the sequence).
"""
import re

import numpy as np
import pytest

from helpers import (CELLS, DTYPES, SEED, compare, make_model, oracle_run, pack_state,
                     state_shapes, unpack_state)

STEPS = 12
CHUNKINGS = {"ones": [1] * STEPS, "threes": [3] * 4, "uneven": [5, 1, 4, 2], "whole": [STEPS]}
TOPOLOGIES = {
    "1layer": dict(num_layers=1),
    "3layer": dict(num_layers=3),
    "2layer_batch_first": dict(num_layers=2, batch_first=True),
    "2layer_unbatched": dict(num_layers=2, unbatched=True),
}
# Models whose inference takes the one-call path (__call__) when x and the state are ready.
READY_TOPOLOGIES = {
    "1layer": dict(num_layers=1),
    "3layer": dict(num_layers=3),
    "2layer_batch_first": dict(num_layers=2, batch_first=True),
    "2layer_bidirectional": dict(num_layers=2, bidirectional=True),
}
# 7 units leave padding in every ISA's vectors, so the kernels copy the state in and out (but
# for an LSTM's projected h); 32 fill whole vectors on every ISA, so the first and last steps
# read and write the caller's state arrays themselves (recurrence.h).
HIDDEN_SIZES = {"padded": 7, "whole_vectors": 32}


def setup(cell, topology, dtype, batch=3, input_size=4, hidden_size=7):
    """(model, x, initial state, dy, dstate, time axis) for one whole sequence."""
    options = dict({**TOPOLOGIES, **READY_TOPOLOGIES}[topology])
    unbatched = options.pop("unbatched", False)
    model = make_model(cell, input_size, hidden_size, dtype, **options)
    rng = np.random.default_rng([SEED, len(cell), len(topology)])
    time_axis = 1 if model.batch_first and not unbatched else 0
    x_shape = [input_size] if unbatched else [batch, input_size]
    x_shape.insert(time_axis, STEPS)
    out = model.proj_size or hidden_size
    y_shape = list(x_shape)
    y_shape[-1] = out
    h_shape, c_shape = state_shapes(model, batch, unbatched)
    draw = lambda shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    random_state = lambda: pack_state(model, draw(h_shape), None if c_shape is None else draw(c_shape))  # noqa: E731
    return model, draw(x_shape), random_state(), draw(y_shape), random_state(), time_axis


def copies(model, state):
    return [None if a is None else a.copy() for a in unpack_state(model, state)]


def assert_unchanged(model, state, given):
    for before, now in zip(given, unpack_state(model, state)):
        if before is not None:
            np.testing.assert_array_equal(now, before)


def chunks(array, sizes, axis):
    edges = np.cumsum(sizes)[:-1]
    return np.split(array, edges, axis=axis)


@pytest.mark.parametrize("hidden_size", HIDDEN_SIZES.values(), ids=HIDDEN_SIZES.keys())
@pytest.mark.parametrize("chunking", CHUNKINGS.values(), ids=CHUNKINGS.keys())
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_chunked_forward_is_bitwise_the_whole_forward(dtype, cell, topology, chunking, hidden_size,
                                                      isa):
    """Also: no call writes to the state it was given."""
    model, x, state, _, _, axis = setup(cell, topology, dtype, hidden_size=hidden_size)
    given = copies(model, state)
    y_whole, state_whole = model(x, state)
    assert_unchanged(model, state, given)
    ys = []
    for x_chunk in chunks(x, chunking, axis):
        given = copies(model, state)
        y, next_state = model(x_chunk, state)
        assert_unchanged(model, state, given)
        state = next_state
        ys.append(y)
    y = np.concatenate(ys, axis=axis)
    assert y.dtype == y_whole.dtype
    np.testing.assert_array_equal(y, y_whole)
    for mine, whole in zip(unpack_state(model, state), unpack_state(model, state_whole)):
        if whole is not None:
            np.testing.assert_array_equal(mine, whole)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_steps_are_bitwise_a_sequence_projected_in_one_product(dtype, cell, threads, isa):
    """The input projection of a call with many rows is one product (layer_forward.h); a call of
    few rows, a streaming step, has each thread project its own units' columns. Both give the
    same bits, also for an input wider than one KC block of the product (two blocks and more)."""
    import pyrnn

    config = pyrnn._core._gemm_config(isa, np.dtype(dtype).name)
    steps, batch = config["stream_max_m"] + 1, 1  # one row more than a call projected in teams
    model = make_model(cell, 2 * config["kc"] + 3, 37, dtype)
    x = np.random.default_rng(SEED).standard_normal((steps, batch, model.input_size)).astype(dtype)
    previous = pyrnn.get_num_threads()
    pyrnn.set_num_threads(threads)
    try:
        y_whole, state_whole = model(x)
        state, ys = None, []
        for t in range(steps):
            y, state = model(x[t:t + 1], state)
            ys.append(y)
    finally:
        pyrnn.set_num_threads(previous)
    np.testing.assert_array_equal(np.concatenate(ys), y_whole)
    for mine, whole in zip(unpack_state(model, state), unpack_state(model, state_whole)):
        if whole is not None:
            np.testing.assert_array_equal(mine, whole)


def chained_backward(model, x, state, dy, dstate, sizes, axis, truncate=False):
    """Forward chunk by chunk carrying the state, then backward from the last chunk to the
    first, handing each chunk's dstate0 to the chunk before (or None when truncating).
    -> (dx, dstate0 of the first chunk, dparams summed over chunks, per-chunk initial states)."""
    tapes, initial_states = [], []
    for x_chunk in chunks(x, sizes, axis):
        initial_states.append(state)
        _, state, tape = model.forward(x_chunk, state)
        tapes.append(tape)
    dxs, dparams = [], None
    for tape, dy_chunk in reversed(list(zip(tapes, chunks(dy, sizes, axis)))):
        dx, dstate0, grads = model.backward(tape, dy_chunk, dstate)
        dxs.insert(0, dx)
        dparams = grads if dparams is None else {k: dparams[k] + grads[k] for k in grads}
        dstate = None if truncate else dstate0
    return np.concatenate(dxs, axis=axis), dstate0, dparams, initial_states


def results_dict(model, dx, dstate0, dparams):
    h, c = unpack_state(model, dstate0)
    out = {"dx": dx, "dh0": h, **{"d" + k: v for k, v in dparams.items()}}
    if c is not None:
        out["dc0"] = c
    return out


@pytest.mark.parametrize("hidden_size", HIDDEN_SIZES.values(), ids=HIDDEN_SIZES.keys())
@pytest.mark.parametrize("chunking", ["ones", "uneven"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_chained_chunk_backward_is_the_whole_backward(dtype, cell, topology, chunking, hidden_size,
                                                      isa):
    model, x, state, dy, dstate, axis = setup(cell, topology, dtype, hidden_size=hidden_size)
    y, _, tape = model.forward(x, state)
    whole = results_dict(model, *model.backward(tape, dy, dstate))
    chained = results_dict(model, *chained_backward(model, x, state, dy, dstate,
                                                    CHUNKINGS[chunking], axis)[:3])
    compare(chained, {k: v.astype(np.float64) for k, v in whole.items()}, dtype, "stream", cell)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_truncated_bptt_treats_each_chunks_initial_state_as_a_constant(dtype, cell, isa):
    """dstate=None at a chunk boundary gives the gradient of the loss with each chunk's initial
    state a constant: the sum over chunks of the oracle's gradients of that chunk alone, from
    its carried state, with no gradient of its final state (but the last chunk's dstate)."""
    model, x, state, dy, dstate, axis = setup(cell, "2layer_batch_first", dtype)
    sizes = CHUNKINGS["uneven"]
    dx, dstate0, dparams, initial_states = chained_backward(model, x, state, dy, dstate, sizes,
                                                            axis, truncate=True)
    expected, last = None, len(sizes) - 1
    for k, (x_chunk, dy_chunk, state_k) in enumerate(zip(chunks(x, sizes, axis),
                                                         chunks(dy, sizes, axis), initial_states)):
        alone = oracle_run(model, x_chunk, state_k, dy=dy_chunk,
                           dstate=dstate if k == last else None)
        if expected is None:
            expected = dict(alone, dx=[alone["dx"]])
        else:
            expected["dx"].append(alone["dx"])
            for name in dparams:
                expected["d" + name] = expected["d" + name] + alone["d" + name]
    expected["dx"] = np.concatenate(expected["dx"], axis=axis)
    actual = results_dict(model, dx, dstate0, dparams)
    compare(actual, {k: expected[k] for k in actual}, dtype, "stream", cell)

    # Truncation changed something: the full chain's gradients differ (far beyond tolerance).
    full = chained_backward(model, x, state, dy, dstate, sizes, axis)
    assert not np.allclose(full[2]["weight_hh_l0"], dparams["weight_hh_l0"], rtol=1e-2)
    assert not np.allclose(full[1][0] if isinstance(full[1], tuple) else full[1],
                           dstate0[0] if isinstance(dstate0, tuple) else dstate0, rtol=1e-2)


def test_dstate_none_is_zero_dstate():
    model, x, state, dy, _, axis = setup("lstm_proj", "3layer", np.float32)
    _, _, tape = model.forward(x, state)
    h_shape, c_shape = state_shapes(model, 3)
    zeros = pack_state(model, np.zeros(h_shape, np.float32), np.zeros(c_shape, np.float32))
    a, b = model.backward(tape, dy, None), model.backward(tape, dy, zeros)
    half = model.backward(tape, dy, (None, zeros[1]))
    for one, other in [(a, b), (a, half)]:
        np.testing.assert_array_equal(one[0], other[0])
        for u, v in zip(one[1], other[1]):
            np.testing.assert_array_equal(u, v)
        for name in one[2]:
            np.testing.assert_array_equal(one[2][name], other[2][name])


def test_bidirectional_layer_does_not_stream():
    """Why streaming is unidirectional: chunks of a bidirectional layer differ from the whole."""
    model = make_model("gru", 4, 5, bidirectional=True)
    x = np.random.default_rng(SEED).standard_normal((6, 2, 4)).astype(np.float32)
    y_whole, _ = model(x)
    y_first, state = model(x[:3])
    assert not np.allclose(y_first, y_whole[:3])


def _unready_variants(array, other_dtype):
    """`array` in forms the kernels do not take as they are: all but the first hold its values."""
    wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
    wide[..., ::2] = array
    return {"other_dtype": array.astype(other_dtype), "strided_view": wide[..., ::2],
            "fortran_order": np.asfortranarray(array), "list": array.tolist()}


def _assert_same_call(model, x, state, expected_y, expected_state, name):
    y, state = model(x, state)
    np.testing.assert_array_equal(y, expected_y, err_msg=name)
    for mine, expected in zip(unpack_state(model, state), unpack_state(model, expected_state)):
        if expected is not None:
            np.testing.assert_array_equal(mine, expected, err_msg=name)


@pytest.mark.parametrize("topology", READY_TOPOLOGIES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_a_step_on_inputs_as_the_kernels_take_them_is_the_checked_forward(dtype, cell, topology):
    """Inference on x and a state exactly as the kernels take them (the state as the previous
    call returned it, or None) is one native call for all the layers; anything else goes through
    forward's conversions. Both ways give forward's bits."""
    model, x, state, _, _, axis = setup(cell, topology, dtype, batch=2)
    other = np.float64 if dtype == np.float32 else np.float32
    x = np.take(x, [0], axis=axis)  # one step: (1, B, I), or (B, 1, I) batch_first
    _, state = model(x, state)  # a state as the kernels return it
    h, c = unpack_state(model, state)
    ready = model._forward_ready
    # (an RNN's or GRU's state may not be a list: that reads as a pair of states)
    states = {f"h_{k}": pack_state(model, v, c) for k, v in _unready_variants(h, other).items() if k != "list"}
    if c is not None:
        states.update({f"c_{k}": (h, v) for k, v in _unready_variants(c, other).items()})
        states["list_pair"] = [h, c]
    cases = {"ready": (x, state), "no_state": (x, None),
             **{f"x_{k}": (v, state) for k, v in _unready_variants(x, other).items()},
             **{k: (x, v) for k, v in states.items()}}
    for name, (x_case, state_case) in cases.items():
        assert (ready(x_case, state_case) is None) == (name not in ("ready", "no_state")), name
        y, expected_state, _ = model.forward(x_case, state_case, training=False)
        _assert_same_call(model, x_case, state_case, y, expected_state, name)
        if "other_dtype" not in name and name != "no_state":  # the same values: the ready call's bits
            _assert_same_call(model, x, state, y, expected_state, name)


@pytest.mark.parametrize("topology", READY_TOPOLOGIES)
@pytest.mark.parametrize("cell", ["lstm_proj", "gru"])
def test_which_sequences_take_the_one_call_path(cell, topology):
    """A time-major x of any length is ready. With batch_first, (B, T, I) is the kernels'
    (T, B, I) in memory only when T or B is 1: a longer batch goes through forward's transposes.
    Ready or not, the same bits as forward."""
    model, x, state, _, _, axis = setup(cell, topology, np.float32, batch=2)
    _, state = model(np.take(x, [0], axis=axis), state)
    one_sequence = np.ascontiguousarray(x[:1] if model.batch_first else x[:, :1])
    sequences = {"whole": (x, not model.batch_first), "one_sequence": (one_sequence, True)}
    first_sequence = pack_state(model, *(None if a is None else a[:, :1].copy() for a in unpack_state(model, state)))
    for name, (x_case, is_ready) in sequences.items():
        state_case = first_sequence if x_case.shape[1 - axis] == 1 else state
        assert (model._forward_ready(x_case, state_case) is not None) == is_ready, name
        y, expected_state, _ = model.forward(x_case, state_case, training=False)
        _assert_same_call(model, x_case, state_case, y, expected_state, name)


def test_a_step_with_a_state_as_returned_still_gets_forwards_messages():
    model = make_model("lstm", 4, 5)
    _, state = model(np.zeros((1, 2, 4), np.float32))
    for x, match in [(np.zeros((0, 2, 4), np.float32), "at least one time step"),
                     (np.zeros((1, 2, 3), np.float32), "expected 4 features"),
                     (np.zeros((1, 3, 4), np.float32), re.escape("h0: expected shape (1, 3, 5)"))]:
        with pytest.raises(ValueError, match=match):
            model(x, state)


@pytest.mark.parametrize("topology", ["1layer", "3layer", "2layer_batch_first"])
def test_an_empty_batch_takes_the_one_call_path(topology):
    """B = 0, one step, with a state as returned: empty results in the right shapes, natively."""
    model, x, state, _, _, axis = setup("lstm", topology, np.float32, batch=0)
    x = np.take(x, [0], axis=axis)
    _, state = model(x, state)
    result = model._forward_ready(x, state)
    assert result is not None
    y, (h, c) = result
    assert y.shape == ((0, 1, 7) if model.batch_first else (1, 0, 7))
    assert h.shape == c.shape == (model.num_layers, 0, 7)
