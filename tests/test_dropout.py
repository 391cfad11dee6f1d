"""Dropout between stacked layers (training=True only, as torch): the masks on the tape
(tape._masks[k] multiplies layer k's output, time-major) reproduce the output and the gradients
through the oracle; inference and dropout=0 are the plain path, bitwise; masks follow the seed;
dropout=1 cuts later layers off their input; keep rate ~ 1-p, kept values scaled by 1/(1-p).
"""
import numpy as np
import pytest

from helpers import (CELLS, DTYPES, KEEP_RATE_SIGMAS, SEED, compare, make_model, native_run,
                     oracle_run, pack_state, random_lengths, state_shapes)


def data(model, rng, steps=6, batch=4):
    """(x, state, dy, dstate) in the model's dtype (time-major)."""
    dtype = model.dtype
    out = (2 if model.bidirectional else 1) * (model.proj_size or model.hidden_size)
    h_shape, c_shape = state_shapes(model, batch)
    draw = lambda shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    state = lambda: pack_state(model, draw(h_shape), None if c_shape is None else draw(c_shape))  # noqa: E731
    return draw((steps, batch, model.input_size)), state(), draw((steps, batch, out)), state()


def assert_results_equal(a, b):
    assert {k for k in a if k != "tape"} == {k for k in b if k != "tape"}
    for name in a:
        if name != "tape":
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_and_zero_dropout_are_the_plain_path(cell):
    rng = np.random.default_rng(SEED)
    plain = make_model(cell, 3, 5, num_layers=3, bidirectional=True)
    dropping = make_model(cell, 3, 5, num_layers=3, bidirectional=True, dropout=0.5)
    zero = make_model(cell, 3, 5, num_layers=3, bidirectional=True, dropout=0.0)
    x, state, dy, dstate = data(plain, rng)
    expected = native_run(plain, x, state)  # inference
    assert_results_equal(native_run(dropping, x, state), expected)
    assert_results_equal(native_run(dropping, x, state), expected)  # the rng does not matter
    trained = native_run(zero, x, state, dy=dy, dstate=dstate)
    assert all(mask is None for mask in trained["tape"]._masks)
    assert_results_equal({k: trained[k] for k in expected}, expected)
    assert_results_equal(trained, native_run(plain, x, state, dy=dy, dstate=dstate))


@pytest.mark.parametrize("num_layers, bidirectional, lengths", [(2, False, False), (3, True, True),
                                                                (2, True, True)],
                         ids=["2layer", "3layer_bidir_lengths", "2layer_bidir_lengths"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_dropout_matches_oracle_with_the_tapes_masks(dtype, cell, num_layers, bidirectional,
                                                     lengths, isa):
    rng = np.random.default_rng([SEED, num_layers, bidirectional])
    model = make_model(cell, 3, 6, dtype, num_layers=num_layers, bidirectional=bidirectional,
                       dropout=0.4)
    x, state, dy, dstate = data(model, rng)
    lengths = random_lengths(rng, x.shape[1], x.shape[0]) if lengths else None
    actual = native_run(model, x, state, lengths, dy, dstate)
    masks = actual["tape"]._masks
    assert len(masks) == num_layers and masks[-1] is None  # no dropout after the last layer
    for mask in masks[:-1]:
        assert mask.shape == (x.shape[0], x.shape[1], actual["y"].shape[2]) and mask.dtype == dtype
        assert 0 < np.count_nonzero(mask) < mask.size  # really dropping, really keeping
    expected = oracle_run(model, x, state, lengths, dy, dstate, masks=masks[:-1])
    compare(actual, expected, dtype, "dropout", cell)
    # The masks matter: without them, the oracle disagrees.
    assert not np.allclose(oracle_run(model, x, state, lengths)["y"], actual["y"], atol=1e-3)


def test_same_seed_gives_same_masks_and_calls_draw_new_ones():
    rng = np.random.default_rng(SEED)
    a, b, c = (make_model("lstm", 3, 6, num_layers=3, dropout=0.5, seed=s) for s in (5, 5, 6))
    x, state, dy, _ = data(a, rng)
    c.load_state_dict(a.state_dict())
    runs = {name: [model.forward(x, state)[2]._masks for _ in range(2)]
            for name, model in [("a", a), ("b", b), ("c", c)]}
    for first, again in zip(runs["a"], runs["b"]):
        for k in range(2):
            np.testing.assert_array_equal(first[k], again[k])
    for k in range(2):
        assert not np.array_equal(runs["a"][0][k], runs["a"][1][k])  # a new draw per call
        assert not np.array_equal(runs["a"][0][k], runs["c"][0][k])  # another seed


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_one_cuts_later_layers_off(cell, isa):
    rng = np.random.default_rng(SEED)
    model = make_model(cell, 3, 5, num_layers=3, dropout=1.0)
    x, state, dy, dstate = data(model, rng)
    actual = native_run(model, x, state, dy=dy, dstate=dstate)
    for mask in actual["tape"]._masks[:-1]:
        assert not mask.any()
    # Layers 1 and 2 see zeros: y does not depend on x, their input weights get no gradient,
    # and without a gradient of layer 0's final state nothing reaches x or layer 0.
    other = native_run(model, 100 * x, state, dy=dy, dstate=dstate)
    np.testing.assert_array_equal(actual["y"], other["y"])
    assert not actual["dweight_ih_l1"].any() and not actual["dweight_ih_l2"].any()
    no_dstate = native_run(model, x, state, dy=dy)
    assert not no_dstate["dx"].any() and not no_dstate["dweight_ih_l0"].any()
    assert not no_dstate["dweight_hh_l0"].any()
    assert actual["y"].any()  # but the top layer still runs from its state and biases
    expected = oracle_run(model, x, state, dy=dy, dstate=dstate,
                          masks=actual["tape"]._masks[:-1])
    compare(actual, expected, np.float32, "dropout", cell)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_keep_rate_and_scale(p, dtype):
    model = make_model("gru", 8, 40, dtype, num_layers=2, bidirectional=True, dropout=p)
    x = np.random.default_rng(SEED).standard_normal((12, 5, 8)).astype(dtype)
    mask = model.forward(x)[2]._masks[0]
    kept = mask != 0
    n = mask.size
    rate = kept.mean()
    assert abs(rate - (1 - p)) <= KEEP_RATE_SIGMAS * np.sqrt(p * (1 - p) / n), rate
    np.testing.assert_array_equal(mask[kept], dtype(1) / dtype(1 - p))
    # Per element: no axis repeats the same pattern (time, batch row, feature).
    assert (kept[0] != kept[1]).any() and (kept[:, 0] != kept[:, 1]).any()
    assert (kept[..., 0] != kept[..., 1]).any()
