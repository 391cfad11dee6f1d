"""RNN, LSTM and GRU layers with PyTorch's parameters, shapes and semantics.

A layer owns its parameters (NumPy arrays, PyTorch's state_dict names) and, per stacked layer,
a native copy packed for the active ISA. Each stacked layer runs all its directions in one
native call; this module only chains the layers, applies dropout between them and converts
between the user's layout and the kernels' time-major one. An inference call whose x and state
are already as the kernels take them (a streaming step, or no state) runs all the layers in one
native call.

Shapes (D = 2 if bidirectional else 1, Hout = proj_size or hidden_size, L = num_layers):
    x       (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched
    y       x's layout with D*Hout features
    h0, h_n (L*D, B, Hout), or (L*D, Hout) unbatched;  c0, c_n (L*D, B, H) for LSTM
"""
import numpy as np

from . import _checks, _core

_NATIVE_LAYER = {np.dtype(np.float32): _core.LayerF32, np.dtype(np.float64): _core.LayerF64}
_NATIVE_STACK = {np.dtype(np.float32): _core.StackF32, np.dtype(np.float64): _core.StackF64}
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _stack_states(per_layer, batched):
    """(D, B, size) arrays of each layer -> (L*D, B, size), or (L*D, size) unbatched."""
    stacked = per_layer[0] if len(per_layer) == 1 else np.concatenate(per_layer)
    return stacked if batched else stacked[:, 0]


class Tape:
    """What a training forward kept for `backward`: per stacked layer its native record (which
    holds the weights that forward used), its input and the dropout mask applied to its output."""

    def __init__(self, config, records, inputs, masks, batched):
        self._config = config
        self._records = records
        self._inputs = inputs
        self._masks = masks
        self._batched = batched

    @property
    def nbytes(self):
        """Bytes held: native records, layer inputs and dropout masks."""
        arrays = self._inputs + [m for m in self._masks if m is not None]
        return sum(r.nbytes for r in self._records) + sum(a.nbytes for a in arrays)


class _Recurrent:
    """Common machinery of RNN, LSTM and GRU; see the module docstring for shapes."""

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=np.float32, seed=None):
        self.input_size = _checks.integer(input_size, "input_size", 1)
        self.hidden_size = _checks.integer(hidden_size, "hidden_size", 1)
        self.num_layers = _checks.integer(num_layers, "num_layers", 1)
        self.proj_size = _checks.integer(proj_size, "proj_size", 0)
        if self.proj_size and cell != "lstm":
            raise ValueError("proj_size: only an LSTM has a projection")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: expected 0 or less than hidden_size={self.hidden_size}, "
                             f"got {self.proj_size}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating, np.integer)):
            raise TypeError(f"dropout: expected a number in [0, 1], got {type(dropout).__name__}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout}")
        self.dropout = float(dropout)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.dtype = _checks.model_dtype(dtype)
        self._cell = cell
        try:
            self._rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"seed: expected None, a non-negative integer or a np.random.Generator, "
                            f"got {seed!r} ({exc})") from exc
        bound = 1.0 / np.sqrt(self.hidden_size)
        self._params = {}
        for name, shape in self._parameter_shapes().items():
            value = self._rng.uniform(-bound, bound, size=shape).astype(self.dtype)
            value.flags.writeable = False
            self._params[name] = value
        self._pack()

    # -- sizes and names ---------------------------------------------------------------------
    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _out_size(self):
        return self.proj_size or self.hidden_size

    @property
    def _config(self):
        return (type(self).__name__, self._cell, self.input_size, self.hidden_size, self.num_layers,
                self.bias, self.bidirectional, self.proj_size, self.dtype)

    def _parameter_shapes(self):
        """PyTorch's state_dict names and shapes, in PyTorch's order."""
        G, H, P = _GATES[self._cell], self.hidden_size, self.proj_size
        shapes = {}
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self._directions * self._out_size
            for suffix in ("", "_reverse")[: self._directions]:
                shapes[f"weight_ih_l{layer}{suffix}"] = (G * H, layer_input)
                shapes[f"weight_hh_l{layer}{suffix}"] = (G * H, self._out_size)
                if self.bias:
                    shapes[f"bias_ih_l{layer}{suffix}"] = (G * H,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (G * H,)
                if P:
                    shapes[f"weight_hr_l{layer}{suffix}"] = (P, H)
        return shapes

    def _layer_params(self, layer, kind):
        return [self._params[f"{kind}_l{layer}{suffix}"] for suffix in ("", "_reverse")[: self._directions]]

    # -- parameters --------------------------------------------------------------------------
    def _pack(self):
        native = _NATIVE_LAYER[self.dtype]
        self._native = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self._directions * self._out_size
            biases = (self._layer_params(layer, "bias_ih"), self._layer_params(layer, "bias_hh")) if self.bias \
                else ([], [])
            projection = self._layer_params(layer, "weight_hr") if self.proj_size else []
            self._native.append(native(
                self._cell, layer_input, self.hidden_size, self.proj_size, self._directions, self.bias,
                self._layer_params(layer, "weight_ih"), self._layer_params(layer, "weight_hh"), *biases, projection))
        self._forward_ready = _NATIVE_STACK[self.dtype](self._native, self.batch_first).forward_ready  # see __call__

    def state_dict(self):
        """name -> read-only array, with PyTorch's names, shapes and order."""
        return {name: value.view() for name, value in self._params.items()}

    def load_state_dict(self, state_dict):
        """Replace every parameter. Values may be anything np.asarray takes (e.g. a torch
        tensor's .numpy()). A missing, extra or mis-shaped entry raises ValueError naming it;
        nothing changes unless every entry is valid."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}")
        shapes = self._parameter_shapes()
        missing = [name for name in shapes if name not in state_dict]
        extra = [name for name in state_dict if name not in shapes]
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                    ([f"unexpected {', '.join(map(str, extra))}"] if extra else [])
            raise ValueError(f"state_dict: {'; '.join(parts)}")
        params = {}
        for name, shape in shapes.items():
            value = _checks.as_real_array(state_dict[name], f"state_dict[{name!r}]")
            _checks.require_shape(value, shape, f"state_dict[{name!r}]")
            value = np.array(value, dtype=self.dtype, order="C", copy=True)
            value.flags.writeable = False
            params[name] = value
        self._params = params
        self._pack()

    # -- forward -----------------------------------------------------------------------------
    def __call__(self, x, state=None, lengths=None):
        """Inference: -> (y, h_n) for RNN and GRU, (y, (h_n, c_n)) for LSTM."""
        if lengths is None:
            # One native call, all layers, when x and the state (None, or as the previous call
            # returned it: streaming) are already what the kernels take; then forward's checks and
            # conversions could neither fail nor change anything, and they would cost more than a
            # step of a small layer. Otherwise it returns None.
            result = self._forward_ready(x, state)
            if result is not None:
                return result
        y, state, _ = self.forward(x, state, lengths, training=False)
        return y, state

    def forward(self, x, state=None, lengths=None, training=True):
        """-> (y, state, tape). With training=True the tape keeps what `backward` needs and
        dropout applies between layers; with training=False the tape is None."""
        converted = _checks.float_array(x, "x", self.dtype)
        borrowed = converted is x or not converted.flags.owndata  # still the caller's memory
        x = converted
        if x.ndim not in (2, 3):
            raise ValueError(f"x: expected a (T, B, I){' batch_first (B, T, I)' if self.batch_first else ''} "
                             f"or unbatched (T, I) array, got shape {_checks.shape_text(x.shape)}")
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        steps, batch, features = x.shape
        if features != self.input_size:
            raise ValueError(f"x: expected {self.input_size} features (input_size) on the last axis, got {features}")
        if steps == 0:
            raise ValueError("x: expected at least one time step, got T = 0")
        h0, c0 = self._initial_state(state, batch, batched)
        if lengths is not None:
            if not batched:
                raise ValueError("lengths: only batched input has per-sequence lengths")
            lengths = _checks.lengths_array(lengths, batch, steps)

        if training and borrowed and np.may_share_memory(x, converted):
            x = x.copy()  # the tape keeps x: the caller may change its array before backward

        D = self._directions
        records, inputs, masks, h_n, c_n = [], [], [], [], []
        layer_input = x
        for layer, native in enumerate(self._native):
            if self.num_layers > 1:
                rows = slice(layer * D, (layer + 1) * D)
                h0_layer, c0_layer = h0[rows], None if c0 is None else c0[rows]
            else:
                h0_layer, c0_layer = h0, c0
            y, h, c, record = native.forward(layer_input, h0_layer, c0_layer, lengths, training)
            h_n.append(h)
            c_n.append(c)
            mask = None
            if training and self.dropout > 0 and layer + 1 < self.num_layers:
                mask = self._dropout_mask(y.shape)
                y = y * mask
            if training:
                records.append(record)
                inputs.append(layer_input)
                masks.append(mask)
            layer_input = y

        y = self._to_user_layout(layer_input, batched)
        h_n = _stack_states(h_n, batched)
        state = (h_n, _stack_states(c_n, batched)) if self._cell == "lstm" else h_n
        tape = Tape(self._config, records, inputs, masks, batched) if training else None
        return y, state, tape

    def _dropout_mask(self, shape):
        if self.dropout >= 1.0:
            return np.zeros(shape, dtype=self.dtype)
        keep = self._rng.random(shape) >= self.dropout
        return keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)

    def _to_user_layout(self, y, batched):
        if not batched:
            return y[:, 0]
        return np.ascontiguousarray(y.transpose(1, 0, 2)) if self.batch_first else y

    def _state_shapes(self, batch):
        rows = self.num_layers * self._directions
        return (rows, batch, self._out_size), (rows, batch, self.hidden_size)

    def _state_array(self, value, name, shape, batched):
        """A state array in the kernels' batched layout (rows, B, size)."""
        expected = shape if batched else (shape[0], shape[2])
        array = _checks.float_array(value, name, self.dtype)
        _checks.require_shape(array, expected, name)
        return array if batched else array[:, None, :]

    def _initial_state(self, state, batch, batched):
        h_shape, c_shape = self._state_shapes(batch)
        if batched and self._is_kernel_state(state, h_shape, c_shape):
            return state if self._cell == "lstm" else (state, None)  # streaming: the state as returned
        if self._cell == "lstm":
            if state is None:
                return np.zeros(h_shape, self.dtype), np.zeros(c_shape, self.dtype)
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"state: expected None or an (h0, c0) pair for an LSTM, got {type(state).__name__}")
            return (self._state_array(state[0], "h0", h_shape, batched),
                    self._state_array(state[1], "c0", c_shape, batched))
        if state is None:
            return np.zeros(h_shape, self.dtype), None
        if isinstance(state, (tuple, list)):
            raise TypeError(f"state: expected None or an h0 array for {type(self).__name__}, got a {type(state).__name__}")
        return self._state_array(state, "h0", h_shape, batched), None

    def _is_kernel_state(self, state, h_shape, c_shape):
        """Whether `state` is already what the kernels take (as forward returns it): C-contiguous
        arrays of the model's dtype and the batched shapes, so no check could fail."""
        def ready(array, shape):
            return _checks.is_kernel_array(array, self.dtype) and array.shape == shape
        if self._cell == "lstm":
            return type(state) is tuple and len(state) == 2 and ready(state[0], h_shape) and ready(state[1], c_shape)
        return ready(state, h_shape)

    # -- backward ----------------------------------------------------------------------------
    def backward(self, tape, dy, dstate=None):
        """BPTT through the forward that made `tape`, with that forward's weights.

        dy has y's shape; dstate (optional) the state's: dh_n, or (dh_n, dc_n) for an LSTM
        (either may be None). -> (dx, dstate0, dparams): dx has x's shape, dstate0 the initial
        state's, dparams is a dict like state_dict()."""
        if not isinstance(tape, Tape):
            raise TypeError(f"tape: expected the Tape returned by forward(..., training=True), got {type(tape).__name__}")
        if tape._config != self._config:
            raise ValueError("tape: it was recorded by a layer of another configuration")
        first = tape._inputs[0]
        steps, batch = first.shape[:2]
        D = self._directions
        y_shape = (steps, batch, D * self._out_size)
        dy = self._dy_time_major(dy, y_shape, tape._batched)
        dh_n, dc_n = self._final_state_gradients(dstate, batch, tape._batched)

        grads = {}
        dh0, dc0 = [None] * self.num_layers, [None] * self.num_layers
        for layer in reversed(range(self.num_layers)):
            rows = slice(layer * D, (layer + 1) * D)
            dx, dh0[layer], dc0[layer], dw_ih, dw_hh, db_ih, db_hh, dw_hr = tape._records[layer].backward(
                tape._inputs[layer], dy, None if dh_n is None else dh_n[rows], None if dc_n is None else dc_n[rows])
            for d, suffix in enumerate(("", "_reverse")[:D]):
                gate_rows = slice(d * dw_ih.shape[0] // D, (d + 1) * dw_ih.shape[0] // D)
                grads[f"weight_ih_l{layer}{suffix}"] = dw_ih[gate_rows]
                grads[f"weight_hh_l{layer}{suffix}"] = dw_hh[gate_rows]
                if self.bias:
                    grads[f"bias_ih_l{layer}{suffix}"] = db_ih[gate_rows]
                    grads[f"bias_hh_l{layer}{suffix}"] = db_hh[gate_rows]
                if self.proj_size:
                    grads[f"weight_hr_l{layer}{suffix}"] = dw_hr[d * self.proj_size:(d + 1) * self.proj_size]
            if layer > 0:
                mask = tape._masks[layer - 1]
                dy = dx if mask is None else np.ascontiguousarray(dx * mask)
        dparams = {name: grads[name] for name in self._params}

        dx = self._to_user_layout(dx, tape._batched)
        dh0 = _stack_states(dh0, tape._batched)
        if self._cell == "lstm":
            return dx, (dh0, _stack_states(dc0, tape._batched)), dparams
        return dx, dh0, dparams

    def _dy_time_major(self, dy, y_shape, batched):
        steps, batch, features = y_shape
        if not batched:
            expected = (steps, features)
        elif self.batch_first:
            expected = (batch, steps, features)
        else:
            expected = y_shape
        dy = _checks.float_array(dy, "dy", self.dtype)
        _checks.require_shape(dy, expected, "dy (y's shape)")
        if not batched:
            return dy[:, None, :]
        return np.ascontiguousarray(dy.transpose(1, 0, 2)) if self.batch_first else dy

    def _final_state_gradients(self, dstate, batch, batched):
        h_shape, c_shape = self._state_shapes(batch)
        if dstate is None:
            return None, None
        if self._cell == "lstm":
            if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
                raise TypeError(f"dstate: expected None or a (dh_n, dc_n) pair for an LSTM, got {type(dstate).__name__}")
            dh, dc = dstate
            return (None if dh is None else self._state_array(dh, "dh_n", h_shape, batched),
                    None if dc is None else self._state_array(dc, "dc_n", c_shape, batched))
        if isinstance(dstate, (tuple, list)):
            raise TypeError(f"dstate: expected None or a dh_n array for {type(self).__name__}, got a {type(dstate).__name__}")
        return self._state_array(dstate, "dh_n", h_shape, batched), None

    def __repr__(self):
        args = [str(self.input_size), str(self.hidden_size)]
        defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                    "bidirectional": False, "proj_size": 0}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                args.append(f"{name}={getattr(self, name)!r}")
        if self.dtype != np.float32:
            args.append(f"dtype={self.dtype.name}")
        return f"{type(self).__name__}({', '.join(args)})"


class LSTM(_Recurrent):
    """Long short-term memory layer (gates i, f, g, o), PyTorch's nn.LSTM semantics."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32, seed=None):
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype, seed)


class GRU(_Recurrent):
    """Gated recurrent unit layer (gates r, z, n), PyTorch's nn.GRU semantics."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=np.float32, seed=None):
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, dtype, seed)


class RNN(_Recurrent):
    """Elman RNN layer, h' = act(W_ih x + b_ih + W_hh h + b_hh), PyTorch's nn.RNN semantics."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, dtype, seed)
