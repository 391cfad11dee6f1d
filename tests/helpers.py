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
