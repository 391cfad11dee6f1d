"""NumPy oracle of pyrnn's recurrent layers (RNN, LSTM, GRU): forward and BPTT.

The executable form of DESIGN.md §3, against which the native kernels are tested:
PyTorch's equations, gate order, parameter names, shapes and state_dict order, written
plainly with a loop over time and one small matmul per step. It computes in the dtype of
`x` (float64 to check others; float32 works too).

Variable-length batches follow PyTorch's packed sequences: at step t only the sequences
with t < length advance (forward direction t = 0 .. T-1, reverse t = T-1 .. 0); the
others keep their state and output zeros, and padded inputs never enter the maths.
"""
from dataclasses import dataclass

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}

# The parameters of one layer and direction, by PyTorch's name without the _l{k} suffix.
_PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")

# RNN activations, each with its derivative written in terms of the activation's output.
_ACTIVATIONS = {
    "tanh": (np.tanh, lambda out: 1 - out * out),
    "relu": (lambda a: np.maximum(a, 0), lambda out: (out > 0).astype(out.dtype)),
}


def _suffix(layer, direction):
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def _param_shapes(cell, input_size, hidden_size, num_layers, bidirectional, proj_size, bias):
    """name -> shape of every parameter, in PyTorch's state_dict order."""
    gate_rows = GATES[cell] * hidden_size
    directions = 2 if bidirectional else 1
    out_size = proj_size or hidden_size
    shapes = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else directions * out_size
        for direction in range(directions):
            suffix = _suffix(layer, direction)
            shapes["weight_ih" + suffix] = (gate_rows, layer_input)
            shapes["weight_hh" + suffix] = (gate_rows, out_size)
            if bias:
                shapes["bias_ih" + suffix] = (gate_rows,)
                shapes["bias_hh" + suffix] = (gate_rows,)
            if proj_size:
                shapes["weight_hr" + suffix] = (proj_size, hidden_size)
    return shapes


def _check_options(cell, proj_size, nonlinearity="tanh"):
    if cell not in GATES:
        raise ValueError(f"cell must be one of {sorted(GATES)}, got {cell!r}")
    if proj_size and cell != "lstm":
        raise ValueError(f"proj_size is for lstm only, got proj_size={proj_size} for {cell}")
    if nonlinearity not in _ACTIVATIONS:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def init_params(cell, input_size, hidden_size, *, num_layers=1, bidirectional=False,
                proj_size=0, bias=True, rng=None, dtype=np.float64):
    """PyTorch's default initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).

    Returns a dict with PyTorch's state_dict names, shapes and order. `rng` is a
    np.random.Generator (or a seed for one).
    """
    _check_options(cell, proj_size)
    rng = np.random.default_rng(rng)
    bound = 1 / np.sqrt(hidden_size)
    shapes = _param_shapes(cell, input_size, hidden_size, num_layers, bidirectional,
                           proj_size, bias)
    return {name: rng.uniform(-bound, bound, shape).astype(dtype)
            for name, shape in shapes.items()}


def _sigmoid(a):
    """1 / (1 + exp(-a)) without overflow for large |a|."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _affine(v, weight, bias):
    """v W^T + b for a batch of row vectors v (bias may be absent)."""
    out = v @ weight.T
    return out if bias is None else out + bias


def _step(cell, nonlinearity, w, x, h, c):
    """One time step for a batch of rows: returns (h', c' or None, what BPTT needs)."""
    gi = _affine(x, w["weight_ih"], w["bias_ih"])
    gh = _affine(h, w["weight_hh"], w["bias_hh"])
    if cell == "rnn":
        activation, _ = _ACTIVATIONS[nonlinearity]
        h_new = activation(gi + gh)
        return h_new, None, (x, h, h_new)
    if cell == "lstm":
        i, f, g, o = np.split(gi + gh, 4, axis=1)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        unprojected = o * tanh_c
        h_new = unprojected if w["weight_hr"] is None else unprojected @ w["weight_hr"].T
        return h_new, c_new, (x, h, c, i, f, g, o, tanh_c, unprojected)
    r_i, z_i, n_i = np.split(gi, 3, axis=1)
    r_h, z_h, n_h = np.split(gh, 3, axis=1)
    r = _sigmoid(r_i + r_h)
    z = _sigmoid(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    h_new = (1 - z) * n + z * h
    return h_new, None, (x, h, r, z, n, n_h)


def _step_backward(cell, nonlinearity, w, saved, dh_new, dc_new, grads):
    """Backward of one _step: adds to `grads`, returns (dx, dh, dc or None) for its inputs.

    Every cell reduces to the gradients of gi = W_ih x + b_ih and gh = W_hh h + b_hh (plus
    any direct path from h to h'); the affine parts are then shared.
    """
    dh_direct = 0
    dc = None
    if cell == "rnn":
        x, h, h_new = saved
        _, derivative = _ACTIVATIONS[nonlinearity]
        dgi = dgh = dh_new * derivative(h_new)
    elif cell == "lstm":
        x, h, c, i, f, g, o, tanh_c, unprojected = saved
        if w["weight_hr"] is None:
            d_unprojected = dh_new
        else:
            grads["weight_hr"] += dh_new.T @ unprojected
            d_unprojected = dh_new @ w["weight_hr"]
        dc_new = dc_new + d_unprojected * o * (1 - tanh_c * tanh_c)
        dgi = dgh = np.concatenate([
            dc_new * g * i * (1 - i),
            dc_new * c * f * (1 - f),
            dc_new * i * (1 - g * g),
            d_unprojected * tanh_c * o * (1 - o),
        ], axis=1)
        dc = dc_new * f
    else:
        x, h, r, z, n, n_h = saved
        dn = dh_new * (1 - z) * (1 - n * n)
        dr = dn * n_h * r * (1 - r)
        dz = dh_new * (h - n) * z * (1 - z)
        dgi = np.concatenate([dr, dz, dn], axis=1)
        dgh = np.concatenate([dr, dz, dn * r], axis=1)
        dh_direct = dh_new * z
    grads["weight_ih"] += dgi.T @ x
    grads["weight_hh"] += dgh.T @ h
    if w["bias_ih"] is not None:
        grads["bias_ih"] += dgi.sum(axis=0)
        grads["bias_hh"] += dgh.sum(axis=0)
    return dgi @ w["weight_ih"], dgh @ w["weight_hh"] + dh_direct, dc


def _run_direction(cell, nonlinearity, w, x, h0, c0, valid, reverse):
    """One layer in one direction over the whole sequence -> (y, h_n, c_n, steps)."""
    h = h0.copy()
    c = None if c0 is None else c0.copy()
    y = np.zeros(x.shape[:2] + h0.shape[1:], dtype=x.dtype)
    steps = []
    times = range(x.shape[0])
    for t in (reversed(times) if reverse else times):
        rows = valid[t]
        h_rows, c_rows, saved = _step(cell, nonlinearity, w, x[t, rows], h[rows],
                                      None if c is None else c[rows])
        h[rows] = h_rows
        if c is not None:
            c[rows] = c_rows
        y[t, rows] = h_rows
        steps.append((t, rows, saved))
    return y, h, c, steps


def _backprop_direction(cell, nonlinearity, w, steps, dy, dh_n, dc_n, grads, input_size):
    """BPTT through one _run_direction -> (dx, dh0, dc0); adds weight gradients to grads."""
    dh = dh_n.copy()
    dc = None if dc_n is None else dc_n.copy()
    dx = np.zeros(dy.shape[:2] + (input_size,), dtype=dy.dtype)
    for t, rows, saved in reversed(steps):
        dx[t, rows], dh[rows], dc_rows = _step_backward(
            cell, nonlinearity, w, saved, dh[rows] + dy[t, rows],
            None if dc is None else dc[rows], grads)
        if dc is not None:
            dc[rows] = dc_rows
    return dx, dh, dc


@dataclass
class _Tape:
    """What forward keeps for backward: the options, the weights it used, every step."""
    cell: str
    nonlinearity: str
    num_layers: int
    directions: int
    out_size: int
    params: dict
    dropout_masks: list
    y_shape: tuple
    h_shape: tuple
    c_shape: tuple  # None for cells without a cell state
    layer_inputs: list  # input array of each layer (after its dropout mask)
    steps: dict  # (layer, direction) -> list of (t, rows, saved)


def _weights(params, layer, direction):
    """The parameters of one layer and direction by kind; absent kinds are None."""
    suffix = _suffix(layer, direction)
    return {kind: params.get(kind + suffix) for kind in _PARAM_KINDS}


def _array_or_zeros(value, shape, dtype, name):
    """`value` as a fresh array of `dtype` checked to be `shape`; zeros when None."""
    if value is None:
        return np.zeros(shape, dtype=dtype)
    value = np.array(value, dtype=dtype)
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
    return value


def _valid_steps(lengths, steps, batch):
    """(T, B) bool: True where step t of sequence b is within its length."""
    if lengths is None:
        return np.ones((steps, batch), dtype=bool)
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be an int array of shape ({batch},), "
                         f"got {lengths.dtype} {lengths.shape}")
    if lengths.min(initial=0) < 0 or lengths.max(initial=0) > steps:
        raise ValueError(f"lengths must be in [0, {steps}], got {lengths}")
    return np.arange(steps)[:, None] < lengths[None, :]


def forward(cell, params, x, h0=None, c0=None, *, num_layers=1, bidirectional=False,
            proj_size=0, nonlinearity="tanh", lengths=None, dropout_masks=None):
    """Run a (stacked, maybe bidirectional) recurrent layer -> (y, h_n, c_n, cache).

    x: (T, B, I), time-major and batched. h0: (L*D, B, Hout) or None (zeros); c0: (L*D, B, H)
    or None for lstm, ignored otherwise. Hout = proj_size or H, D = 2 if bidirectional.
    lengths: None or int array (B,) with 0 <= length <= T (packed-sequence semantics).
    dropout_masks: None or num_layers-1 arrays (T, B, D*Hout), already scaled; mask k
    multiplies the output of layer k where it enters layer k+1.
    Returns y (T, B, D*Hout), h_n (L*D, B, Hout), c_n (L*D, B, H) for lstm else None, and
    the cache for `backward`. h_n and c_n are indexed layer * D + direction. The presence of
    biases is read from params. Computes in x's dtype if float32 or float64, else float64.
    """
    _check_options(cell, proj_size, nonlinearity)
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x = x.astype(dtype)
    if x.ndim != 3:
        raise ValueError(f"x must be (T, B, I), got shape {x.shape}")
    steps, batch, input_size = x.shape
    if "weight_hh_l0" not in params:
        raise ValueError("params has no weight_hh_l0")
    hidden_size = np.shape(params["weight_hh_l0"])[0] // GATES[cell]
    directions = 2 if bidirectional else 1
    out_size = proj_size or hidden_size

    expected = _param_shapes(cell, input_size, hidden_size, num_layers, bidirectional,
                             proj_size, "bias_ih_l0" in params)
    for name in list(expected) + [name for name in params if name not in expected]:
        if name not in params or name not in expected:
            raise ValueError(f"params: {'missing' if name in expected else 'unexpected'} {name}")
        if np.shape(params[name]) != expected[name]:
            raise ValueError(f"params: {name} must have shape {expected[name]}, "
                             f"got {np.shape(params[name])}")
    # A copy in x's dtype: the cache keeps the weights this forward used.
    params = {name: np.array(params[name], dtype=dtype) for name in expected}

    h_shape = (num_layers * directions, batch, out_size)
    c_shape = (num_layers * directions, batch, hidden_size) if cell == "lstm" else None
    h0 = _array_or_zeros(h0, h_shape, dtype, "h0")
    c0 = _array_or_zeros(c0, c_shape, dtype, "c0") if cell == "lstm" else None
    valid = _valid_steps(lengths, steps, batch)
    y_shape = (steps, batch, directions * out_size)
    if dropout_masks is not None:
        if len(dropout_masks) != num_layers - 1:
            raise ValueError(f"dropout_masks must hold {num_layers - 1} arrays, "
                             f"got {len(dropout_masks)}")
        dropout_masks = [_array_or_zeros(mask, y_shape, dtype, f"dropout_masks[{k}]")
                         for k, mask in enumerate(dropout_masks)]

    h_n = np.empty_like(h0)
    c_n = None if c0 is None else np.empty_like(c0)
    tape = _Tape(cell, nonlinearity, num_layers, directions, out_size, params, dropout_masks,
                 y_shape, h_shape, c_shape, [], {})
    layer_input = x
    for layer in range(num_layers):
        if layer > 0 and dropout_masks is not None:
            layer_input = layer_input * dropout_masks[layer - 1]
        tape.layer_inputs.append(layer_input)
        outputs = []
        for direction in range(directions):
            k = layer * directions + direction
            y, h_last, c_last, steps_taken = _run_direction(
                cell, nonlinearity, _weights(params, layer, direction), layer_input,
                h0[k], None if c0 is None else c0[k], valid, reverse=direction == 1)
            outputs.append(y)
            h_n[k] = h_last
            if c_n is not None:
                c_n[k] = c_last
            tape.steps[layer, direction] = steps_taken
        layer_input = np.concatenate(outputs, axis=2)
    return layer_input, h_n, c_n, tape


def backward(cache, dy, dh_n=None, dc_n=None):
    """BPTT for one `forward` -> (dx, dh0, dc0, dparams).

    dy has y's shape; dh_n, dc_n the shapes of h_n, c_n, or None (zeros). dc0 is None for
    cells other than lstm. dparams has the keys, shapes and order of the params forward
    used; weight gradients are summed over all steps, each direction's separately. dy at
    padded steps is ignored, and dx there is zero.
    """
    tape = cache
    dtype = tape.layer_inputs[0].dtype
    d_layer_output = _array_or_zeros(dy, tape.y_shape, dtype, "dy")
    dh_n = _array_or_zeros(dh_n, tape.h_shape, dtype, "dh_n")
    dc_n = None if tape.c_shape is None else _array_or_zeros(dc_n, tape.c_shape, dtype, "dc_n")
    dh0 = np.empty_like(dh_n)
    dc0 = None if dc_n is None else np.empty_like(dc_n)
    dparams = dict.fromkeys(tape.params)

    for layer in reversed(range(tape.num_layers)):
        layer_input = tape.layer_inputs[layer]
        d_layer_input = np.zeros_like(layer_input)
        for direction in range(tape.directions):
            k = layer * tape.directions + direction
            w = _weights(tape.params, layer, direction)
            grads = {kind: np.zeros_like(value) for kind, value in w.items() if value is not None}
            own_output = slice(direction * tape.out_size, (direction + 1) * tape.out_size)
            dx, dh0[k], dc_first = _backprop_direction(
                tape.cell, tape.nonlinearity, w, tape.steps[layer, direction],
                d_layer_output[:, :, own_output], dh_n[k], None if dc_n is None else dc_n[k],
                grads, layer_input.shape[2])
            if dc0 is not None:
                dc0[k] = dc_first
            d_layer_input += dx
            for kind, grad in grads.items():
                dparams[kind + _suffix(layer, direction)] = grad
        if layer > 0 and tape.dropout_masks is not None:
            d_layer_input = d_layer_input * tape.dropout_masks[layer - 1]
        d_layer_output = d_layer_input
    return d_layer_output, dh0, dc0, dparams
