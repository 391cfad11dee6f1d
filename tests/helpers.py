"""Tolerances, seeds and helpers shared by pyrnn's tests, stated once here.

Import as `from helpers import ...` (pytest puts tests/ on sys.path). Nothing here imports
pyrnn, so collection works before the native module is built; torch is imported lazily.
"""
import importlib.util

import numpy as np
import pytest

SEED = 1234

# Central finite differences in float64: step, and the allowed error relative to the norm.
FD_EPS = 1e-6
FD_RTOL = 1e-6

# Native code against the oracle, and the oracle against torch: relative to the norm.
F64_RTOL = 1e-10
F32_OUT_RTOL = 1e-4
F32_GRAD_RTOL = 1e-3

HAS_TORCH = importlib.util.find_spec("torch") is not None
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def rel_err(a, b):
    """||a - b|| / max(||b||, tiny): the error relative to the norm (b = 0 needs a = 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(np.float64).tiny)


def torch_forward_backward(cell, params, x, h0, c0, dy, dh_n, dc_n, *, hidden_size,
                           num_layers=1, bidirectional=False, proj_size=0,
                           nonlinearity="tanh", lengths=None):
    """torch.nn.RNN/LSTM/GRU in float64 loaded with `params` (a state_dict of arrays).

    Arguments are as for pyrnn.reference.forward (time-major, h0/c0 given explicitly; c0 and
    dc_n are ignored for rnn/gru). Lengths go through pack_padded_sequence(enforce_sorted=
    False) and pad_packed_sequence(total_length=T); torch refuses length 0, so sequences of
    length 0 are left out of torch's batch and get their defined result: y = 0, h_n = h0,
    dh0 = dh_n, dx = 0 (at least one length must be positive). Gradients are autograd's of
    sum(y*dy) + sum(h_n*dh_n) (+ sum(c_n*dc_n)).
    Returns numpy (y, h_n, c_n, dx, dh0, dc0, dparams); c_n and dc0 are None unless lstm.
    """
    import torch

    options = dict(input_size=x.shape[2], hidden_size=hidden_size, num_layers=num_layers,
                   bias="bias_ih_l0" in params, bidirectional=bidirectional,
                   dtype=torch.float64)
    if cell == "rnn":
        module = torch.nn.RNN(nonlinearity=nonlinearity, **options)
    elif cell == "lstm":
        module = torch.nn.LSTM(proj_size=proj_size, **options)
    else:
        module = torch.nn.GRU(**options)
    module.load_state_dict({name: torch.tensor(value) for name, value in params.items()})

    lstm = cell == "lstm"
    steps = x.shape[0]
    kept = np.ones(x.shape[1], dtype=bool) if lengths is None else np.asarray(lengths) > 0
    x_t = torch.tensor(x[:, kept], requires_grad=True)
    h0_t = torch.tensor(h0[:, kept], requires_grad=True)
    c0_t = torch.tensor(c0[:, kept], requires_grad=True) if lstm else None
    state = (h0_t, c0_t) if lstm else h0_t
    if lengths is None:
        y_t, state_n = module(x_t, state)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x_t, torch.as_tensor(np.asarray(lengths)[kept]), enforce_sorted=False)
        y_packed, state_n = module(packed, state)
        y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(y_packed, total_length=steps)
    h_n_t, c_n_t = state_n if lstm else (state_n, None)

    loss = (y_t * torch.tensor(dy[:, kept])).sum() + (h_n_t * torch.tensor(dh_n[:, kept])).sum()
    if lstm:
        loss = loss + (c_n_t * torch.tensor(dc_n[:, kept])).sum()
    loss.backward()

    y = np.zeros(dy.shape)
    y[:, kept] = y_t.detach().numpy()
    h_n = h0.copy()
    h_n[:, kept] = h_n_t.detach().numpy()
    dx = np.zeros(x.shape)
    dx[:, kept] = x_t.grad.numpy()
    dh0 = dh_n.copy()
    dh0[:, kept] = h0_t.grad.numpy()
    c_n = dc0 = None
    if lstm:
        c_n = c0.copy()
        c_n[:, kept] = c_n_t.detach().numpy()
        dc0 = dc_n.copy()
        dc0[:, kept] = c0_t.grad.numpy()
    dparams = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return y, h_n, c_n, dx, dh0, dc0, dparams


# --- Native layers against the oracle (test_layers_*.py, test_streaming.py, test_dropout.py,
# test_fuzz.py). pyrnn is imported inside the functions, so collection needs no native module.

# Every ISA pyrnn knows; the `isa` fixture (conftest.py) skips those this CPU lacks.
ISAS = ("avx512", "avx2", "generic")

# The cells a test runs over: name -> (class name, constructor keywords). lstm_proj's
# proj_size is PROJ_SIZE(hidden_size) (legal only for hidden_size >= 2).
CELLS = {
    "rnn_tanh": ("RNN", dict(nonlinearity="tanh")),
    "rnn_relu": ("RNN", dict(nonlinearity="relu")),
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {}),
    "gru": ("GRU", {}),
}
DTYPES = {"f32": np.float32, "f64": np.float64}

# Random-config property tests: examples per ISA (oracle) and in all (API fuzz).
ORACLE_EXAMPLES = 15
FUZZ_EXAMPLES = 200

# Dropout keep rate: allowed deviation from 1 - p, in binomial standard deviations.
KEEP_RATE_SIGMAS = 6


def proj_size_for(hidden_size):
    """The proj_size lstm_proj uses: odd where possible, always in [1, hidden_size)."""
    return max(1, (hidden_size - 1) // 2 | 1) if hidden_size >= 3 else 1


def cell_legal(cell, hidden_size):
    return cell != "lstm_proj" or hidden_size >= 2


def make_model(cell, input_size, hidden_size, dtype=np.float32, seed=SEED, **options):
    """A pyrnn layer of `cell` (a CELLS name); options are the constructor's keywords."""
    import pyrnn

    class_name, cell_options = CELLS[cell]
    options = {**cell_options, **options}
    if cell == "lstm_proj":
        options.setdefault("proj_size", proj_size_for(hidden_size))
    return getattr(pyrnn, class_name)(input_size, hidden_size, dtype=dtype, seed=seed, **options)


def f32_exact(rng, shape, scale=1.0):
    """float64 normals rounded to float32: the same values in a float32 and a float64 model."""
    return (scale * rng.standard_normal(shape)).astype(np.float32).astype(np.float64)


def round_state_dict(model):
    """Round a model's parameters to float32 values (so float32 and float64 copies agree)."""
    model.load_state_dict({k: v.astype(np.float32) for k, v in model.state_dict().items()})


def random_lengths(rng, batch, steps):
    """One length per sequence in [0, steps], in random order, including 0 and steps when
    batch allows (and at least one positive length, which torch needs)."""
    lengths = rng.integers(0, steps + 1, size=batch)
    special = [steps, 0][:batch]
    lengths[rng.permutation(batch)[:len(special)]] = special
    return lengths.astype(np.int64)


def state_shapes(model, batch, unbatched=False):
    """(h shape, c shape or None) of a model's state for `batch` sequences."""
    rows = model.num_layers * (2 if model.bidirectional else 1)
    lead = (rows,) if unbatched else (rows, batch)
    h = lead + (model.proj_size or model.hidden_size,)
    return h, (lead + (model.hidden_size,) if type(model).__name__ == "LSTM" else None)


def y_shape(model, steps, batch, unbatched=False):
    features = (2 if model.bidirectional else 1) * (model.proj_size or model.hidden_size)
    if unbatched:
        return (steps, features)
    return (batch, steps, features) if model.batch_first else (steps, batch, features)


def pack_state(model, h, c):
    """The state argument in the model's convention: h, or (h, c) for an LSTM."""
    return (h, c) if type(model).__name__ == "LSTM" else h


def unpack_state(model, state):
    """-> (h, c or None) from a state in the model's convention."""
    return tuple(state) if type(model).__name__ == "LSTM" else (state, None)


def _time_major(model, a, unbatched):
    a = np.asarray(a, dtype=np.float64)
    if unbatched:
        return a[:, None]
    return a.transpose(1, 0, 2) if model.batch_first else a


def _user_layout(model, a, unbatched):
    if unbatched:
        return a[:, 0]
    return a.transpose(1, 0, 2) if model.batch_first else a


def oracle_run(model, x, state=None, lengths=None, dy=None, dstate=None, masks=None):
    """pyrnn.reference in float64 on `model`'s weights, taking and giving arrays in the model's
    layout (batch_first, unbatched). state/dstate follow the model's convention (None = zeros).
    masks: None or the tape's dropout masks (time-major). -> dict name -> float64 array of
    y, h_n, c_n (LSTM), and with dy: dx, dh0, dc0 (LSTM) and d<param> for every parameter."""
    from pyrnn import reference

    unbatched = np.ndim(x) == 2
    x_tm = _time_major(model, x, unbatched)
    cell = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}[type(model).__name__]
    h0, c0 = unpack_state(model, state) if state is not None else (None, None)
    h0 = None if h0 is None else (np.asarray(h0, np.float64)[:, None] if unbatched else np.asarray(h0, np.float64))
    c0 = None if c0 is None else (np.asarray(c0, np.float64)[:, None] if unbatched else np.asarray(c0, np.float64))
    params = {k: np.asarray(v, np.float64) for k, v in model.state_dict().items()}
    options = dict(num_layers=model.num_layers, bidirectional=model.bidirectional,
                   proj_size=model.proj_size, nonlinearity=getattr(model, "nonlinearity", "tanh"),
                   lengths=lengths,
                   dropout_masks=None if masks is None or all(m is None for m in masks)
                   else [np.asarray(m, np.float64) for m in masks])
    y, h_n, c_n, cache = reference.forward(cell, params, x_tm, h0, c0, **options)
    squeeze = (lambda a: a[:, 0]) if unbatched else (lambda a: a)
    out = {"y": _user_layout(model, y, unbatched), "h_n": squeeze(h_n)}
    if c_n is not None:
        out["c_n"] = squeeze(c_n)
    if dy is None:
        return out
    dh_n, dc_n = unpack_state(model, dstate) if dstate is not None else (None, None)
    expand = (lambda a: None if a is None else np.asarray(a, np.float64)[:, None]) if unbatched \
        else (lambda a: None if a is None else np.asarray(a, np.float64))
    dx, dh0, dc0, dparams = reference.backward(cache, _time_major(model, dy, unbatched),
                                               expand(dh_n), expand(dc_n))
    out.update(dx=_user_layout(model, dx, unbatched), dh0=squeeze(dh0))
    if dc0 is not None:
        out["dc0"] = squeeze(dc0)
    out.update({"d" + name: grad for name, grad in dparams.items()})
    return out


def native_run(model, x, state=None, lengths=None, dy=None, dstate=None):
    """The model's own forward (training=True when dy is given) and backward, as the dict
    oracle_run gives; with dy the tape is returned too, under "tape"."""
    y, state_n, tape = model.forward(x, state, lengths, training=dy is not None)
    h_n, c_n = unpack_state(model, state_n)
    out = {"y": y, "h_n": h_n}
    if c_n is not None:
        out["c_n"] = c_n
    if dy is None:
        return out
    dx, dstate0, dparams = model.backward(tape, dy, dstate)
    dh0, dc0 = unpack_state(model, dstate0)
    out.update(dx=dx, dh0=dh0)
    if dc0 is not None:
        out["dc0"] = dc0
    out.update({"d" + name: grad for name, grad in dparams.items()})
    out["tape"] = tape
    return out


OUTPUT_NAMES = ("y", "h_n", "c_n")

# Worst relative errors measured, (suite, cell, dtype) -> {quantity: error}; printed at the end
# of the session by conftest.py's pytest_terminal_summary.
ERROR_LOG = {}


def compare(actual, expected, dtype, suite, cell):
    """Assert every entry of `expected` (a name -> array dict) matches `actual` within the
    tolerance of `dtype` relative to the norm (outputs: F32_OUT_RTOL, gradients:
    F32_GRAD_RTOL; float64: F64_RTOL), with the right dtype and shape; log the errors."""
    dtype = np.dtype(dtype)
    missing = sorted(set(expected) - set(actual))
    assert not missing, f"results missing: {missing}"
    errors = {}
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {dtype}"
        assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
        errors[name] = rel_err(got, want)
    log = ERROR_LOG.setdefault((suite, cell, dtype.name), {})
    for name, err in errors.items():
        kind = name if name in OUTPUT_NAMES else "grads"
        log[kind] = max(log.get(kind, 0.0), err)
    bad = {}
    for name, err in errors.items():
        rtol = F64_RTOL if dtype == np.float64 else (F32_OUT_RTOL if name in OUTPUT_NAMES else F32_GRAD_RTOL)
        if not err <= rtol:  # NaN fails too
            bad[name] = (err, rtol)
    assert not bad, f"relative errors above tolerance (error, rtol): {bad}"
    return errors
