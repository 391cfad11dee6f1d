"""Checks of the NumPy oracle, pyrnn.reference: its backward against central finite
differences, its forward and backward against torch.nn.RNN/LSTM/GRU, its packed-sequence
and dropout semantics against their definitions, and init_params against torch's layout.
"""
from dataclasses import dataclass, replace
from itertools import product

import numpy as np
import pytest

from helpers import (F32_GRAD_RTOL, F32_OUT_RTOL, F64_RTOL, FD_EPS, FD_RTOL, rel_err,
                     requires_torch, torch_forward_backward)
from pyrnn import reference

CELLS = {
    "rnn_tanh": dict(cell="rnn"),
    "rnn_relu": dict(cell="rnn", nonlinearity="relu"),
    "lstm": dict(cell="lstm"),
    "lstm_proj": dict(cell="lstm", proj_size=2),
    "gru": dict(cell="gru"),
}


@dataclass(frozen=True)
class Net:
    """A layer configuration and the features a test exercises with it."""
    name: str
    cell: str
    nonlinearity: str = "tanh"
    proj_size: int = 0
    bias: bool = True
    num_layers: int = 1
    bidirectional: bool = False
    lengths: bool = False
    dropout: bool = False

    def __str__(self):
        return "-".join([self.name, f"{self.num_layers}layer"]
                        + [flag for flag, on in [("bidir", self.bidirectional),
                                                 ("nobias", not self.bias),
                                                 ("lengths", self.lengths),
                                                 ("dropout", self.dropout)] if on])

    @property
    def options(self):
        """The keywords reference.forward takes for this net."""
        return dict(num_layers=self.num_layers, bidirectional=self.bidirectional,
                    proj_size=self.proj_size, nonlinearity=self.nonlinearity)


def nets(topologies):
    return [Net(name, **cell, **topology) for name, cell in CELLS.items()
            for topology in topologies]


@dataclass
class Problem:
    """Inputs of one forward, and the weights of the loss sum(y*wy) + sum(h_n*wh) + sum(c_n*wc)."""
    params: dict
    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray  # None unless lstm
    lengths: np.ndarray  # None, or one per sequence: the full length, 0 and one between
    dropout_masks: list  # None, or scaled keep masks between layers
    wy: np.ndarray
    wh: np.ndarray
    wc: np.ndarray  # None unless lstm


def make_problem(net, rng, steps, batch, input_size, hidden_size, dtype=np.float64):
    directions = 2 if net.bidirectional else 1
    out_size = net.proj_size or hidden_size
    states = net.num_layers * directions
    y_shape = (steps, batch, directions * out_size)
    lstm = net.cell == "lstm"
    keep_prob = 0.7
    return Problem(
        params=reference.init_params(net.cell, input_size, hidden_size, bias=net.bias,
                                     num_layers=net.num_layers, proj_size=net.proj_size,
                                     bidirectional=net.bidirectional, rng=rng, dtype=dtype),
        x=rng.standard_normal((steps, batch, input_size)).astype(dtype),
        h0=rng.standard_normal((states, batch, out_size)).astype(dtype),
        c0=rng.standard_normal((states, batch, hidden_size)).astype(dtype) if lstm else None,
        lengths=(np.resize([steps, 0, steps // 2 + 1], batch) if net.lengths else None),
        dropout_masks=([(rng.random(y_shape) < keep_prob).astype(dtype) / keep_prob
                        for _ in range(net.num_layers - 1)] if net.dropout else None),
        wy=rng.standard_normal(y_shape),
        wh=rng.standard_normal((states, batch, out_size)),
        wc=rng.standard_normal((states, batch, hidden_size)) if lstm else None,
    )


def run_forward(net, problem):
    return reference.forward(net.cell, problem.params, problem.x, problem.h0, problem.c0,
                             lengths=problem.lengths, dropout_masks=problem.dropout_masks,
                             **net.options)


def loss(net, problem):
    y, h_n, c_n, _ = run_forward(net, problem)
    total = np.sum(y * problem.wy) + np.sum(h_n * problem.wh)
    return total if c_n is None else total + np.sum(c_n * problem.wc)


def run_backward(net, problem):
    """-> {name: analytic gradient of loss} for x, h0, c0 (lstm) and every parameter."""
    _, _, _, cache = run_forward(net, problem)
    dx, dh0, dc0, dparams = reference.backward(cache, problem.wy, problem.wh, problem.wc)
    assert list(dparams) == list(problem.params)
    grads = {"x": dx, "h0": dh0, **dparams}
    if dc0 is not None:
        grads["c0"] = dc0
    return grads


def inputs_of(problem):
    """The arrays the loss depends on, by the names run_backward gives their gradients."""
    arrays = {"x": problem.x, "h0": problem.h0, **problem.params}
    if problem.c0 is not None:
        arrays["c0"] = problem.c0
    return arrays


def numerical_gradient(f, array):
    """Central differences of the scalar f() with respect to every entry of `array`, which
    f reads and which is perturbed in place (and restored)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + FD_EPS
        plus = f()
        array[index] = original - FD_EPS
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * FD_EPS)
    return grad


# Every cell with and without bias, over four topologies. Small sizes: every entry of every
# gradient is checked. relu's kink is not avoided: with random data a pre-activation within
# FD_EPS of 0 has probability ~1e-6 per entry, and the seed is fixed.
FD_NETS = [replace(net, bias=bias) for net, bias in product(nets([
    dict(),
    dict(bidirectional=True, lengths=True),
    dict(num_layers=2, dropout=True),
    dict(num_layers=2, bidirectional=True, lengths=True, dropout=True),
]), [True, False])]


@pytest.mark.parametrize("net", FD_NETS, ids=str)
def test_backward_matches_finite_differences(net, rng):
    problem = make_problem(net, rng, steps=4, batch=3, input_size=3, hidden_size=4)
    analytic = run_backward(net, problem)
    errors = {name: rel_err(analytic[name], numerical_gradient(lambda: loss(net, problem), array))
              for name, array in inputs_of(problem).items()}
    assert max(errors.values()) < FD_RTOL, errors


TORCH_NETS = nets([
    dict(),
    dict(bias=False, lengths=True),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, bidirectional=True, lengths=True),
    dict(num_layers=3, bias=False, lengths=True),
    dict(num_layers=3, bidirectional=True, bias=False, lengths=True),
])


@requires_torch
@pytest.mark.parametrize("net", TORCH_NETS, ids=str)
def test_matches_torch(net, rng):
    hidden_size = 5
    problem = make_problem(net, rng, steps=5, batch=4, input_size=4, hidden_size=hidden_size)
    y, h_n, c_n, cache = run_forward(net, problem)
    dx, dh0, dc0, dparams = reference.backward(cache, problem.wy, problem.wh, problem.wc)
    expected = torch_forward_backward(
        net.cell, problem.params, problem.x, problem.h0, problem.c0, problem.wy, problem.wh,
        problem.wc, hidden_size=hidden_size, lengths=problem.lengths, **net.options)
    t_y, t_h_n, t_c_n, t_dx, t_dh0, t_dc0, t_dparams = expected

    assert list(dparams) == list(t_dparams)
    errors = {"y": rel_err(y, t_y), "h_n": rel_err(h_n, t_h_n), "dx": rel_err(dx, t_dx),
              "dh0": rel_err(dh0, t_dh0),
              **{name: rel_err(grad, t_dparams[name]) for name, grad in dparams.items()}}
    if net.cell == "lstm":
        errors.update(c_n=rel_err(c_n, t_c_n), dc0=rel_err(dc0, t_dc0))
    assert max(errors.values()) < F64_RTOL, errors


PACKED_NETS = nets([dict(num_layers=2, bidirectional=True, lengths=True)])


@pytest.mark.parametrize("net", PACKED_NETS, ids=str)
def test_lengths_act_as_separate_shorter_sequences(net, rng):
    """With lengths, sequence b gives what it gives alone, cut to its length: zeros past it
    in y and dx, its own final state, and padded x or dy (NaN here) never enter."""
    problem = make_problem(net, rng, steps=4, batch=3, input_size=3, hidden_size=4)
    padded = np.arange(4)[:, None] >= problem.lengths[None, :]
    problem.x[padded] = np.nan
    problem.wy[padded] = np.nan
    y, h_n, c_n, cache = run_forward(net, problem)
    dx, dh0, dc0, _ = reference.backward(cache, problem.wy, problem.wh, problem.wc)

    assert not np.any(y[padded]) and not np.any(dx[padded])
    for b, length in enumerate(problem.lengths):
        alone = replace(problem, x=problem.x[:length, b:b + 1], h0=problem.h0[:, b:b + 1],
                        c0=None if c_n is None else problem.c0[:, b:b + 1], lengths=None)
        y_b, h_n_b, c_n_b, cache_b = run_forward(net, alone)
        dx_b, dh0_b, dc0_b, _ = reference.backward(
            cache_b, problem.wy[:length, b:b + 1], problem.wh[:, b:b + 1],
            None if c_n is None else problem.wc[:, b:b + 1])
        np.testing.assert_allclose(y[:length, b:b + 1], y_b, rtol=F64_RTOL)
        np.testing.assert_allclose(h_n[:, b:b + 1], h_n_b, rtol=F64_RTOL)
        np.testing.assert_allclose(dx[:length, b:b + 1], dx_b, rtol=F64_RTOL)
        np.testing.assert_allclose(dh0[:, b:b + 1], dh0_b, rtol=F64_RTOL)
        if c_n is not None:
            np.testing.assert_allclose(c_n[:, b:b + 1], c_n_b, rtol=F64_RTOL)
            np.testing.assert_allclose(dc0[:, b:b + 1], dc0_b, rtol=F64_RTOL)
    empty = list(problem.lengths).index(0)
    np.testing.assert_array_equal(h_n[:, empty], problem.h0[:, empty])


DROPOUT_NETS = nets([dict(num_layers=2, bidirectional=True, lengths=True, dropout=True)])


def single_layer(params, layer):
    """The parameters of one layer of a stack, renamed as layer 0 of a one-layer net."""
    suffix = f"_l{layer}"
    return {name.replace(suffix, "_l0"): value for name, value in params.items()
            if name.endswith(suffix) or name.endswith(suffix + "_reverse")}


@pytest.mark.parametrize("net", DROPOUT_NETS, ids=str)
def test_dropout_mask_multiplies_output_between_layers(net, rng):
    problem = make_problem(net, rng, steps=4, batch=3, input_size=3, hidden_size=4)
    y, h_n, c_n, _ = run_forward(net, problem)

    one_layer = replace(net, num_layers=1)
    bottom = replace(problem, params=single_layer(problem.params, 0), h0=problem.h0[:2],
                     c0=None if c_n is None else problem.c0[:2], dropout_masks=None)
    y_bottom, h_n_bottom, c_n_bottom, _ = run_forward(one_layer, bottom)
    top = replace(bottom, params=single_layer(problem.params, 1), h0=problem.h0[2:],
                  c0=None if c_n is None else problem.c0[2:],
                  x=y_bottom * problem.dropout_masks[0])
    y_top, h_n_top, c_n_top, _ = run_forward(one_layer, top)

    np.testing.assert_allclose(y, y_top, rtol=F64_RTOL)
    np.testing.assert_allclose(h_n, np.concatenate([h_n_bottom, h_n_top]), rtol=F64_RTOL)
    if c_n is not None:
        np.testing.assert_allclose(c_n, np.concatenate([c_n_bottom, c_n_top]), rtol=F64_RTOL)


@pytest.mark.parametrize("net", DROPOUT_NETS, ids=str)
def test_float32_computes_in_float32_close_to_float64(net, rng):
    problem = make_problem(net, rng, steps=6, batch=3, input_size=5, hidden_size=7)
    problem32 = replace(problem, x=problem.x.astype(np.float32))
    y, h_n, c_n, cache = run_forward(net, problem)
    y32, h_n32, c_n32, cache32 = run_forward(net, problem32)
    grads = reference.backward(cache, problem.wy, problem.wh, problem.wc)
    grads32 = reference.backward(cache32, problem.wy, problem.wh, problem.wc)

    outputs = [(y, y32), (h_n, h_n32)] + ([(c_n, c_n32)] if c_n is not None else [])
    dx, dh0, dc0, dparams = grads
    dx32, dh032, dc032, dparams32 = grads32
    gradients = [(dx, dx32), (dh0, dh032)] + [(dparams[n], dparams32[n]) for n in dparams]
    if dc0 is not None:
        gradients.append((dc0, dc032))
    for expected, actual in outputs:
        assert actual.dtype == np.float32 and rel_err(actual, expected) < F32_OUT_RTOL
    for expected, actual in gradients:
        assert actual.dtype == np.float32 and rel_err(actual, expected) < F32_GRAD_RTOL


INIT_CONFIGS = {
    "rnn": dict(cell="rnn", input_size=3, hidden_size=4),
    "lstm_2layer_bidir_proj": dict(cell="lstm", input_size=3, hidden_size=6, num_layers=2,
                                   bidirectional=True, proj_size=2),
    "lstm_2layer_proj_nobias": dict(cell="lstm", input_size=5, hidden_size=4, num_layers=2,
                                    proj_size=3, bias=False),
    "gru_3layer_bidir_nobias": dict(cell="gru", input_size=2, hidden_size=5, num_layers=3,
                                    bidirectional=True, bias=False),
}


@requires_torch
@pytest.mark.parametrize("config", INIT_CONFIGS.values(), ids=INIT_CONFIGS.keys())
def test_init_params_layout_is_torch_state_dict(config):
    import torch

    options = dict(config)
    module_class = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    module = module_class[options.pop("cell")](**options)
    params = reference.init_params(config["cell"], **{k: v for k, v in config.items()
                                                      if k != "cell"})
    assert [(name, value.shape) for name, value in params.items()] == \
        [(name, tuple(value.shape)) for name, value in module.state_dict().items()]


@pytest.mark.parametrize("config", INIT_CONFIGS.values(), ids=INIT_CONFIGS.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_init_params_within_bound_and_seeded(config, dtype):
    options = {k: v for k, v in config.items() if k != "cell"}
    params = reference.init_params(config["cell"], **options, dtype=dtype, rng=7)
    again = reference.init_params(config["cell"], **options, dtype=dtype, rng=7)
    bound = 1 / np.sqrt(config["hidden_size"])
    assert all(value.dtype == dtype for value in params.values())
    assert all(np.all(np.abs(value) <= bound) for value in params.values())
    assert all(np.array_equal(params[name], again[name]) for name in params)


def test_init_params_is_uniform(rng):
    params = reference.init_params("lstm", 16, 16, num_layers=2, bidirectional=True, rng=rng)
    scaled = np.concatenate([value.ravel() for value in params.values()]) * np.sqrt(16)
    # ~10^4 samples of U(-1, 1): each quantile is within 0.05 of its value by > 6 sigma.
    np.testing.assert_allclose(np.quantile(scaled, [0.05, 0.25, 0.5, 0.75, 0.95]),
                               [-0.9, -0.5, 0, 0.5, 0.9], atol=0.05)


def test_rejects_malformed_arguments(rng):
    params = reference.init_params("lstm", 3, 4, rng=rng)
    x = rng.standard_normal((2, 2, 3))
    missing = {k: v for k, v in params.items() if k != "bias_hh_l0"}
    extra = {**params, "weight_hr_l0": np.zeros((2, 4))}
    misshaped = {**params, "weight_hh_l0": np.zeros((16, 3))}
    cases = [
        (dict(params=missing), "missing bias_hh_l0"),
        (dict(params=extra), "unexpected weight_hr_l0"),
        (dict(params=misshaped), "weight_hh_l0 must have shape"),
        (dict(x=x[0]), "x must be"),
        (dict(h0=np.zeros((2, 2, 4))), "h0 must have shape"),
        (dict(c0=np.zeros((1, 3, 4))), "c0 must have shape"),
        (dict(lengths=[1, 3]), "lengths must be in"),
        (dict(lengths=[1.0, 2.0]), "lengths must be an int array"),
        (dict(dropout_masks=[np.ones((2, 2, 4))]), "dropout_masks must hold 0"),
        (dict(cell="gru", proj_size=2), "proj_size is for lstm only"),
        (dict(cell="elman"), "cell must be one of"),
        (dict(nonlinearity="sigmoid"), "nonlinearity must be"),
    ]
    for change, message in cases:
        call = {"cell": "lstm", "params": params, "x": x, **change}
        with pytest.raises(ValueError, match=message):
            reference.forward(call.pop("cell"), call.pop("params"), call.pop("x"), **call)
