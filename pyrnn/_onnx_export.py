"""Build an ONNX model of a one-layer pyrnn RNN / LSTM / GRU from its state_dict.

Used by the benchmarks to run the same model in ONNX Runtime (the full ONNX import/export
of DESIGN §7 comes later). The graph is one ONNX LSTM, GRU or RNN operator whose weights are
initializers converted from PyTorch's layout:

    W (D, G*H, I) = weight_ih,  R (D, G*H, H) = weight_hh,  B (D, 2*G*H) = bias_ih || bias_hh
    gate blocks reordered:  LSTM  i,f,g,o -> ONNX i,o,f,c
                            GRU   r,z,n   -> ONNX z,r,h  with linear_before_reset=1 (pyrnn's GRU)
                            RNN   one block, activation Tanh or Relu

Graph inputs:  X (T, B, I), initial_h (D, B, H), initial_c (D, B, H) for an LSTM.
Graph outputs: Y (T, D, B, H), Y_h (D, B, H), Y_c (D, B, H) for an LSTM  (ONNX's layouts;
`y_from_onnx` turns Y into pyrnn's (T, B, D*H)). D = 2 when bidirectional. One layer only,
no projection (ONNX's LSTM has none); sequence lengths are not wired in.
"""
import numpy as np

OPSET = 17          # ONNX operator set of the graph
IR_VERSION = 8      # the IR version that goes with opset 17 (readable by older runtimes)

# ONNX's gate order as indices into PyTorch's gate blocks.
ONNX_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
_OPERATOR = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
_ACTIVATION = {"tanh": "Tanh", "relu": "Relu"}


def _reorder(array, cell, hidden_size):
    """Permute the gate blocks along axis 0 from PyTorch's order to ONNX's."""
    blocks = [array[g * hidden_size:(g + 1) * hidden_size] for g in ONNX_GATE_ORDER[cell]]
    return np.concatenate(blocks, axis=0)


def recurrent_model(cell, state_dict, *, nonlinearity="tanh", bidirectional=False,
                    seq_len=None, batch=None):
    """-> onnx.ModelProto computing the one-layer `cell` ("rnn", "lstm", "gru") of `state_dict`.

    state_dict has PyTorch's names (weight_ih_l0, weight_hh_l0, [bias_ih_l0, bias_hh_l0],
    and the _reverse ones when bidirectional). seq_len and batch fix the graph's T and B
    (None leaves them symbolic). Computes in float32.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if cell not in ONNX_GATE_ORDER:
        raise ValueError(f"cell: expected one of {sorted(ONNX_GATE_ORDER)}, got {cell!r}")
    if nonlinearity not in _ACTIVATION:
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    suffixes = ("", "_reverse") if bidirectional else ("",)
    expected = {f"{kind}_l0{suffix}" for suffix in suffixes for kind in ("weight_ih", "weight_hh")}
    bias = "bias_ih_l0" in state_dict
    if bias:
        expected |= {f"{kind}_l0{suffix}" for suffix in suffixes for kind in ("bias_ih", "bias_hh")}
    extra = sorted(set(state_dict) - expected)
    missing = sorted(expected - set(state_dict))
    if extra or missing:
        raise ValueError("state_dict: a one-layer model without projection is expected; "
                         f"missing {missing}, unexpected {extra}")

    gates = len(ONNX_GATE_ORDER[cell])
    hidden_size = np.shape(state_dict["weight_hh_l0"])[1]
    input_size = np.shape(state_dict["weight_ih_l0"])[1]
    directions = len(suffixes)

    def stacked(kind):
        return np.stack([_reorder(np.asarray(state_dict[f"{kind}_l0{suffix}"], np.float32),
                                  cell, hidden_size) for suffix in suffixes])

    initializers = [numpy_helper.from_array(stacked("weight_ih"), "W"),
                    numpy_helper.from_array(stacked("weight_hh"), "R")]
    if bias:
        b = np.concatenate([stacked("bias_ih"), stacked("bias_hh")], axis=1)
        assert b.shape == (directions, 2 * gates * hidden_size)
        initializers.append(numpy_helper.from_array(b, "B"))

    lstm = cell == "lstm"
    T = seq_len if seq_len is not None else "T"
    B = batch if batch is not None else "B"
    state_shape = [directions, B, hidden_size]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, input_size]),
              helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, state_shape)]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, directions, B, hidden_size]),
               helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, state_shape)]
    # Operator inputs: X, W, R, B, sequence_lens, initial_h[, initial_c] ("" = absent).
    node_inputs = ["X", "W", "R", "B" if bias else "", "", "initial_h"]
    node_outputs = ["Y", "Y_h"]
    if lstm:
        inputs.append(helper.make_tensor_value_info("initial_c", TensorProto.FLOAT, state_shape))
        outputs.append(helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, state_shape))
        node_inputs.append("initial_c")
        node_outputs.append("Y_c")

    attributes = dict(hidden_size=hidden_size,
                      direction="bidirectional" if bidirectional else "forward")
    if cell == "gru":
        attributes["linear_before_reset"] = 1
    if cell == "rnn":
        attributes["activations"] = [_ACTIVATION[nonlinearity]] * directions
    node = helper.make_node(_OPERATOR[cell], node_inputs, node_outputs, name=cell, **attributes)
    graph = helper.make_graph([node], f"pyrnn_{cell}", inputs, outputs, initializers)
    model = helper.make_model(graph, producer_name="pyrnn",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def y_from_onnx(y):
    """ONNX's Y (T, D, B, H) -> pyrnn's y (T, B, D*H) (a view when D = 1)."""
    steps, directions, batch, hidden = y.shape
    if directions == 1:
        return y.reshape(steps, batch, hidden)
    return y.transpose(0, 2, 1, 3).reshape(steps, batch, directions * hidden)
