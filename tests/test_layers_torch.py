"""Native layers against torch.nn.RNN/LSTM/GRU loaded with the same state_dict: outputs, final
states and every gradient (torch autograd of sum(y*dy) + sum(h_n*dh_n) [+ sum(c_n*dc_n)]), in
float32 and float64, under every ISA. torch runs in the user's layout (batch_first, unbatched)
and variable lengths go through pack_padded_sequence(enforce_sorted=False) /
pad_packed_sequence(total_length=T). Skipped without torch.
"""
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from helpers import (CELLS, DTYPES, HAS_TORCH, SEED, F32_OUT_RTOL, cell_legal, compare, make_model,
                     native_run, pack_state, random_lengths, rel_err, state_shapes, unpack_state,
                     y_shape)

pytestmark = [pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed"),
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")]


@pytest.fixture(autouse=True, scope="module")
def torch_one_thread():
    """torch's own thread pool next to pyrnn's spinning OpenMP threads oversubscribes the cores
    (50 s instead of 6 s for this file on 2 busy cores); torch's problems here are tiny."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def torch_module(model):
    """A torch module of the model's class, options and dtype, with the model's weights."""
    import torch

    options = dict(num_layers=model.num_layers, bias=model.bias, batch_first=model.batch_first,
                   bidirectional=model.bidirectional,
                   dtype=torch.float64 if model.dtype == np.float64 else torch.float32)
    kind = type(model).__name__
    if kind == "RNN":
        module = torch.nn.RNN(model.input_size, model.hidden_size, nonlinearity=model.nonlinearity,
                              **options)
    elif kind == "LSTM":
        module = torch.nn.LSTM(model.input_size, model.hidden_size, proj_size=model.proj_size,
                               **options)
    else:
        module = torch.nn.GRU(model.input_size, model.hidden_size, **options)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return module


def torch_run(model, x, state, lengths, dy, dstate):
    """torch's results in the dict form of helpers.native_run. Sequences of length 0 (which
    torch refuses) are left out of torch's batch and get their defined result: y = 0, dx = 0,
    h_n = h0, dh0 = dh_n (and the same for c)."""
    import torch

    module = torch_module(model)
    lstm = type(model).__name__ == "LSTM"
    unbatched = x.ndim == 2
    batch_axis = 0 if model.batch_first else 1
    batch = 1 if unbatched else x.shape[batch_axis]
    steps = x.shape[0] if unbatched else x.shape[1 - batch_axis]
    h_shape, c_shape = state_shapes(model, batch, unbatched)
    h0, c0 = unpack_state(model, state) if state is not None else (np.zeros(h_shape), None)
    if lstm and c0 is None:
        c0 = np.zeros(c_shape)
    dh_n, dc_n = unpack_state(model, dstate) if dstate is not None else (None, None)
    dh_n = np.zeros(h_shape) if dh_n is None else dh_n
    dc_n = (np.zeros(c_shape) if dc_n is None else dc_n) if lstm else None

    kept = np.ones(batch, bool) if lengths is None else np.asarray(lengths) > 0
    take = (lambda a, axis: a) if unbatched else (lambda a, axis: np.take(a, np.flatnonzero(kept), axis))
    tensor = lambda a, axis: torch.tensor(take(np.asarray(a), axis), dtype=module.weight_hh_l0.dtype)  # noqa: E731
    x_t = tensor(x, batch_axis).requires_grad_()
    state_axis = 1  # torch's state is (L*D, B, H) even with batch_first
    h0_t = tensor(h0, state_axis).requires_grad_()
    c0_t = tensor(c0, state_axis).requires_grad_() if lstm else None
    torch_state = (h0_t, c0_t) if lstm else h0_t
    if lengths is None:
        y_t, state_n = module(x_t, torch_state)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x_t, torch.as_tensor(np.asarray(lengths)[kept]), batch_first=model.batch_first,
            enforce_sorted=False)
        y_packed, state_n = module(packed, torch_state)
        y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(y_packed, batch_first=model.batch_first,
                                                        total_length=steps)
    h_n_t, c_n_t = state_n if lstm else (state_n, None)
    loss = (y_t * tensor(dy, batch_axis)).sum() + (h_n_t * tensor(dh_n, state_axis)).sum()
    if lstm:
        loss = loss + (c_n_t * tensor(dc_n, state_axis)).sum()
    loss.backward()

    def scatter(full, part, axis):
        """`full` (float64) with the kept sequences' entries replaced by torch's `part`."""
        full = np.array(full, dtype=np.float64)
        index = [slice(None)] * full.ndim
        if not unbatched:
            index[axis] = np.flatnonzero(kept)
        full[tuple(index)] = part.detach().numpy()
        return full

    out = {"y": scatter(np.zeros(y_shape(model, steps, batch, unbatched)), y_t, batch_axis),
           "h_n": scatter(h0, h_n_t, state_axis),
           "dx": scatter(np.zeros(np.shape(x)), x_t.grad, batch_axis),
           "dh0": scatter(dh_n, h0_t.grad, state_axis)}
    if lstm:
        out.update(c_n=scatter(c0, c_n_t, state_axis), dc0=scatter(dc_n, c0_t.grad, state_axis))
    out.update({"d" + name: p.grad.detach().numpy().astype(np.float64)
                for name, p in module.named_parameters()})
    return out


@dataclass(frozen=True)
class Case:
    name: str
    T: int = 5
    B: int = 3
    I: int = 4
    H: int = 6
    num_layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False
    lengths: bool = False
    unbatched: bool = False
    state: bool = True
    dstate: bool = True

    def __str__(self):
        return self.name


CASES = [
    Case("base"),
    Case("no_state_no_dstate", state=False, dstate=False),
    Case("nobias_odd", T=7, B=5, I=17, H=33, bias=False),
    Case("h1_b1_t1", T=1, B=1, I=3, H=1),
    Case("layers3_bidir", num_layers=3, bidirectional=True, H=5),
    Case("batch_first_layers2", B=4, num_layers=2, batch_first=True),
    Case("unbatched_bidir", unbatched=True, bidirectional=True),
    Case("packed", T=6, B=5, lengths=True),
    Case("packed_bidir_layers2", T=6, B=5, H=9, lengths=True, bidirectional=True, num_layers=2),
    Case("packed_batch_first_bidir_nostate", T=5, B=4, lengths=True, batch_first=True,
         bidirectional=True, state=False),
    Case("packed_layers3_nobias", T=4, B=5, H=3, lengths=True, num_layers=3, bias=False),
]


def problem(case, cell, dtype):
    rng = np.random.default_rng([SEED, zlib.crc32(f"{case}/{cell}".encode())])
    model = make_model(cell, case.I, case.H, dtype, seed=int(rng.integers(2**31)),
                       num_layers=case.num_layers, bidirectional=case.bidirectional,
                       bias=case.bias, batch_first=case.batch_first)
    x_shape = (case.T, case.I) if case.unbatched else (
        (case.B, case.T, case.I) if case.batch_first else (case.T, case.B, case.I))
    h_shape, c_shape = state_shapes(model, case.B, case.unbatched)
    draw = lambda shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    random_state = lambda: pack_state(model, draw(h_shape), None if c_shape is None else draw(c_shape))  # noqa: E731
    call = dict(x=draw(x_shape), state=random_state() if case.state else None,
                lengths=random_lengths(rng, case.B, case.T) if case.lengths else None,
                dy=draw(y_shape(model, case.T, case.B, case.unbatched)),
                dstate=random_state() if case.dstate else None)
    return model, call


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_native_matches_torch(case, cell, dtype, isa):
    if not cell_legal(cell, case.H):
        pytest.skip("a projection needs hidden_size >= 2")
    model, call = problem(case, cell, dtype)
    expected = torch_run(model, **call)
    actual = native_run(model, **call)
    grad_names = lambda results: [k for k in results if k[1:] in model.state_dict()]  # noqa: E731
    assert grad_names(actual) == grad_names(expected), "dparams: names or order differ from torch's"
    compare(actual, expected, dtype, "torch", cell)


def test_foundation_issue_snippet(isa):
    """The example of the foundation issue, verbatim but for x."""
    import torch

    import pyrnn

    x = np.random.default_rng(SEED).standard_normal((7, 3, 32)).astype(np.float32)
    t = torch.nn.LSTM(32, 64)
    m = pyrnn.LSTM(32, 64)
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    y, (h_n, c_n) = m(x)
    t_y, (t_h_n, t_c_n) = t(torch.from_numpy(x))
    for name, mine, theirs in [("y", y, t_y), ("h_n", h_n, t_h_n), ("c_n", c_n, t_c_n)]:
        theirs = theirs.detach().numpy()
        assert mine.shape == theirs.shape and mine.dtype == np.float32, name
        assert rel_err(mine, theirs) < F32_OUT_RTOL, name


@pytest.mark.parametrize("cell", CELLS)
def test_torch_state_dict_loads_and_round_trips(cell):
    """Names, shapes and order equal torch's; torch's values load unchanged and come back."""
    model = make_model(cell, 3, 6, num_layers=2, bidirectional=True)
    module = torch_module(model)
    mine, theirs = model.state_dict(), module.state_dict()
    assert [(k, v.shape) for k, v in mine.items()] == [(k, tuple(v.shape)) for k, v in theirs.items()]
    for v in module.parameters():
        v.data.uniform_(-3, 3)
    model.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, module.state_dict()[name].numpy(), err_msg=name)
