"""A property-based fuzz of the public API. Each example builds a random layer (every cell and
option, sizes including 0 and 1 where legal, either dtype, a random ISA) and makes a training or
inference call with random shapes, input dtypes, lengths, states, memory layouts (strided,
Fortran, read-only, negative strides) and special values, with at most one deliberate fault.

Properties: a call with a fault raises the fault's exception type (ValueError for shapes and
values, TypeError for types) with a message naming the argument; any other call returns results
of the right shapes and dtype, equal to the oracle's when the input is finite; NaN or inf in a
sequence never leaks into another sequence's output; no other exception, never a crash.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyrnn
from helpers import (CELLS, FUZZ_EXAMPLES, ISAS, cell_legal, compare, make_model, native_run,
                     oracle_run, pack_state, random_lengths, state_shapes, unpack_state, y_shape)

# float16 input with 1e30 sprinkled overflows to inf on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

# fault -> (exception type, the argument its message must name)
FAULTS = {
    None: (None, None),
    "x_dtype": (TypeError, "x"),
    "x_features": (ValueError, "x"),
    "x_rank": (ValueError, "x"),
    "x_no_steps": (ValueError, "x"),
    "lengths_range": (ValueError, "lengths"),
    "lengths_count": (ValueError, "lengths"),
    "lengths_dtype": (TypeError, "lengths"),
    "lengths_unbatched": (ValueError, "lengths"),
    "h0_shape": (ValueError, "h0"),
    "state_dtype": (TypeError, "h0"),
    "state_structure": (TypeError, "state"),
    "dy_shape": (ValueError, "dy"),
    "dstate_shape": (ValueError, "dh_n"),
}
BAD_X_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128, object]
LAYOUTS = ["contiguous", "strided", "fortran", "read_only", "negative_strides"]


def in_layout(a, layout):
    if layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "read_only":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "negative_strides":
        flip = tuple(slice(None, None, -1) for _ in a.shape)
        return a[flip].copy()[flip]
    return a


@st.composite
def scenarios(draw, fault):
    hidden = draw(st.sampled_from([1, 2, 3, 8, 17]))
    if fault == "lengths_unbatched":
        unbatched = True
    else:
        unbatched = not (fault or "").startswith("lengths") and draw(st.booleans())
    cell = draw(st.sampled_from([c for c in CELLS if cell_legal(c, hidden)]))
    training = draw(st.booleans()) or fault in ("dy_shape", "dstate_shape")
    return dict(
        isa=draw(st.sampled_from(ISAS)), cell=cell, hidden=hidden,
        input_size=draw(st.sampled_from([1, 2, 5])),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()), batch_first=draw(st.booleans()),
        dropout=draw(st.sampled_from([0.0, 0.3, 1.0])),
        dtype=draw(st.sampled_from([np.float32, np.float64])), training=training,
        steps=0 if fault == "x_no_steps" else draw(st.integers(1, 5)),
        batch=draw(st.sampled_from([2, 0, 1, 3, 4, 5])), unbatched=unbatched,
        x_dtype=draw(st.sampled_from(BAD_X_DTYPES)) if fault == "x_dtype"
        else draw(st.sampled_from([np.float16, np.float32, np.float64])),
        layout=draw(st.sampled_from(LAYOUTS)),
        special=draw(st.sampled_from([None, None, "nan", "inf", "huge"])),
        use_lengths=not unbatched and draw(st.booleans()) or fault and fault.startswith("lengths"),
        use_state=draw(st.booleans()) or fault in ("h0_shape", "state_dtype", "state_structure"),
        use_dstate=draw(st.booleans()) or fault == "dstate_shape",
        fault=fault, seed=draw(st.integers(0, 2**31 - 1)))


def build_call(s, model, rng):
    """The arguments of forward and backward for scenario s, with its fault (if any)."""
    fault, steps, batch, unbatched = s["fault"], s["steps"], s["batch"], s["unbatched"]
    features = s["input_size"] + (1 if fault == "x_features" else 0)
    if unbatched:
        shape = [steps, features]
    else:
        shape = [batch, steps, features] if model.batch_first else [steps, batch, features]
    if fault == "x_rank":
        shape = shape[-1:] if unbatched else [1] + shape
    x = rng.standard_normal(shape)
    if s["special"] and x.size:
        spots = rng.random(x.shape) < 0.2
        x[spots] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[s["special"]] * np.sign(x[spots])
    if fault == "x_dtype":
        x = (x > 0) if s["x_dtype"] is np.bool_ else np.nan_to_num(x).astype(s["x_dtype"])
    else:
        x = x.astype(s["x_dtype"])
    x = in_layout(x, s["layout"])

    lengths = None
    if s["use_lengths"]:
        lengths = random_lengths(rng, batch, steps) if batch else np.zeros(0, np.int64)
        if fault == "lengths_range":
            lengths = np.append(lengths[1:], rng.choice([-1, steps + 1]))
            if batch == 0:
                lengths = np.array([], np.int64)  # nothing to put out of range
        elif fault == "lengths_count":
            lengths = np.append(lengths, 1)
        elif fault == "lengths_dtype":
            lengths = lengths.astype(np.float64)
        elif fault == "lengths_unbatched":
            lengths = lengths[:1] if batch else np.array([1])

    h_shape, c_shape = state_shapes(model, batch, unbatched)
    draw_state = lambda: pack_state(  # noqa: E731
        model, in_layout(rng.standard_normal(h_shape), s["layout"]),
        None if c_shape is None else rng.standard_normal(c_shape))
    state = draw_state() if s["use_state"] else None
    if fault == "h0_shape":
        h, c = unpack_state(model, state)
        state = pack_state(model, np.zeros(h.shape[:-1] + (h.shape[-1] + 1,)), c)
    elif fault == "state_dtype":
        h, c = unpack_state(model, state)
        state = pack_state(model, h.astype(np.int64), c)
    elif fault == "state_structure":
        h, c = unpack_state(model, state)
        state = h if c is not None else (h, h)

    out_shape = y_shape(model, steps, batch, unbatched)
    dy = rng.standard_normal(out_shape)
    if fault == "dy_shape":
        dy = rng.standard_normal(out_shape[:-1] + (out_shape[-1] + 1,))
    dstate = draw_state() if s["use_dstate"] else None
    if fault == "dstate_shape":
        dh, dc = unpack_state(model, dstate)
        dstate = pack_state(model, np.zeros((dh.shape[0] + 1,) + dh.shape[1:]), dc)
    return x, state, lengths, dy, dstate


def expected_fault(s):
    """The fault this call really has (None if the drawn fault could not apply)."""
    if s["fault"] == "lengths_range" and s["batch"] == 0:
        return None  # no sequence to give an out-of-range length
    return s["fault"]


def run(s, model, x, state, lengths, dy, dstate):
    """forward (+ backward when training) through the public API -> results dict."""
    y, state_n, tape = model.forward(x, state, lengths, training=s["training"])
    h_n, c_n = unpack_state(model, state_n)
    results = {"y": y, "h_n": h_n}
    if c_n is not None:
        results["c_n"] = c_n
    if s["training"]:
        dx, dstate0, dparams = model.backward(tape, dy, dstate)
        dh0, dc0 = unpack_state(model, dstate0)
        results.update(dx=dx, dh0=dh0, **{"d" + k: v for k, v in dparams.items()})
        if dc0 is not None:
            results["dc0"] = dc0
        results["tape"] = tape
    return results


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_public_api_fuzz(fault):
    """Half of FUZZ_EXAMPLES are clean calls, the rest split among the faults."""
    examples = FUZZ_EXAMPLES // 2 if fault is None else FUZZ_EXAMPLES // 2 // (len(FAULTS) - 1)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None)
    @given(s=scenarios(fault))
    def check(s):
        check_call(s)

    check()


def check_call(s):
    if s["isa"] not in pyrnn.available_isas():
        s = dict(s, isa="generic")
    rng = np.random.default_rng(s["seed"])
    previous = pyrnn.active_isa()
    pyrnn._core.select_isa(s["isa"])
    try:
        model = make_model(s["cell"], s["input_size"], s["hidden"], s["dtype"],
                           seed=s["seed"], num_layers=s["num_layers"],
                           bidirectional=s["bidirectional"], bias=s["bias"],
                           batch_first=s["batch_first"], dropout=s["dropout"])
        x, state, lengths, dy, dstate = build_call(s, model, rng)
        fault = expected_fault(s)
        error, argument = FAULTS[fault]
        if error is not None:
            with pytest.raises(error) as info:
                run(s, model, x, state, lengths, dy, dstate)
            assert type(info.value) is error  # not a subclass of it either
            assert str(info.value).startswith(argument + (" " if argument == "dy" else ":")), str(info.value)
            return
        results = run(s, model, x, state, lengths, dy, dstate)
    finally:
        pyrnn._core.select_isa(previous)

    # Shapes and dtype.
    steps, batch, unbatched = s["steps"], s["batch"], s["unbatched"]
    h_shape, c_shape = state_shapes(model, batch, unbatched)
    assert results["y"].shape == y_shape(model, steps, batch, unbatched)
    assert results["h_n"].shape == h_shape
    assert all(v.dtype == model.dtype for k, v in results.items() if k != "tape")
    if s["training"]:
        assert results["dx"].shape == np.shape(x) and results["dh0"].shape == h_shape
        for name, value in model.state_dict().items():
            assert results["d" + name].shape == value.shape

    x_model = np.asarray(x, model.dtype)
    batch_axis = None if unbatched else (0 if model.batch_first else 1)
    if np.isfinite(x_model).all():
        if s["special"] == "huge":  # finite and saturating: only relu may grow without bound
            if s["cell"] != "rnn_relu":
                assert all(np.isfinite(v).all() for k, v in results.items() if k != "tape")
            return
        as_model = lambda a: None if a is None else np.asarray(a, model.dtype)  # noqa: E731
        h, c = unpack_state(model, state) if state is not None else (None, None)
        masks = results["tape"]._masks[:-1] if s["training"] else None
        expected = oracle_run(model, x_model, None if state is None else pack_state(model, as_model(h), as_model(c)),
                              lengths, as_model(dy) if s["training"] else None, dstate, masks)
        compare(results, expected, model.dtype, "fuzz", s["cell"])
    elif batch_axis is not None:
        # A non-finite input stays in its own sequence (the forward keeps sequences apart).
        bad = ~np.isfinite(x_model).all(axis=tuple(a for a in range(3) if a != batch_axis))
        clean = np.take(results["y"], np.flatnonzero(~bad), axis=batch_axis)
        assert np.isfinite(clean).all()
