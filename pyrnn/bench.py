"""pyrnn's comparison runner (DESIGN.md §6): pyrnn against its peers on one case list.

Peers, each only when importable: PyTorch (nn.RNN/LSTM/GRU loaded with pyrnn's weights),
ONNX Runtime (the same model built with onnx.helper, see _onnx_export.py) and the NumPy
oracle pyrnn.reference. Every implementation runs the same float32 weights and data at the
same thread count (torch, ORT intra-op, pyrnn, and NumPy's BLAS: see thread_limits).

Per case, before any timing:
  1. pyrnn's float32 outputs and final states (and, for training, every gradient) are checked
     against the float64 oracle on the same float32 weights and inputs: relative error by
     norm <= OUT_RTOL for outputs, <= GRAD_RTOL for gradients;
  2. each peer's outputs are checked against pyrnn's (<= PEER_RTOL; gradients <= GRAD_RTOL).
A failed check raises CheckFailure: a benchmark of a wrong answer is worthless.

Timing: each implementation's first call is the checked one (and the warm-up). Then, after
settle() and one call to wake its threads, a burst of back-to-back calls (>= 3, lasting >=
CALIBRATE_FRACTION of the target sample time; none when the first call took >= WARM_S)
calibrates how many calls make one sample (>= the target sample time). Single calls calibrated
badly: one made right after a peer, while that peer's workers still spun, took 100x its time
and left samples of a few cold calls. Then rounds in which every implementation takes one
sample, round-robin with the starting one rotated each round and, before each sample, a pause
until no thread of the process has used the CPU for SETTLE_S (settle()): the previous runtime's
idle workers spin for a while after a call and would steal the cores of whichever runs next. At
least 3 rounds; fewer than asked when they would overrun the per-case budget. Reported: the
median sample, in ms per call (streaming: ms per step, over STREAM_STEPS calls of T = 1 with
the state carried). Ratios are best peer ms / pyrnn ms, so > 1 means pyrnn is faster. FLOPs
per forward step G*2*B*H*(I+H) (G = 4/3/1), training 3x forward; GFLOP/s are also given as a %
of the machine's float32 GEMM rate (NumPy's 2048^3 matmul at the same thread count; in a child
process with OpenBLAS's own choice of kernel when this one runs under BLAS_KERNEL_OVERRIDES).
That rate is measured once at the start; the GEMM-bound cases (throughput, training) also time
the matmul in their own rounds, beside pyrnn and the peers, and their % is against the median
of those samples, so that a slow or a fast period of a shared host moves both sides of it alike.
Not under BLAS_KERNEL_OVERRIDES, where this process's matmul is not the machine's.

The case list CASES is the one place the grid lives; bench/ and tests/ import it.
"""
from __future__ import annotations

import ctypes
import dataclasses
import datetime
import fnmatch
import gc
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import pyrnn
from pyrnn import reference

# Tolerances, relative error by norm (||got - expected|| / ||expected||).
OUT_RTOL = 1e-3      # pyrnn float32 outputs and final states vs the float64 oracle
GRAD_RTOL = 1e-2     # pyrnn float32 gradients vs the float64 oracle; peers' gradients vs pyrnn's
PEER_RTOL = 1e-4     # a peer's outputs vs pyrnn's (the same float32 model, so they must agree)

REFERENCE_MAX_S = 2.0    # the oracle is timed only where one call takes less than this
WARM_S = 1.0             # a first call this long is warm-up enough: no second, calibrating call
CALIBRATE_FRACTION = 0.2  # a calibrating burst lasts at least this fraction of a sample
SETTLE_S = 0.02          # quiet time before each sample: no thread of the process on the CPU
SETTLE_LIMIT_S = 1.0     # longest wait for it (seen: ONNX Runtime's workers spin ~40 ms after a
                         # run, OpenBLAS's ~110 ms after a product, on a 2-core Zen 4)
STREAM_STEPS = 100       # steps per streaming sample; the state is carried from step to step
MATMUL_N = 2048          # the machine rate's product: NumPy's float32 MATMUL_N^3 matmul
MATMUL = "matmul"        # its samples' name among a case's
GEMM_BOUND_KINDS = ("throughput", "training")  # cases that time the matmul in their rounds
SEED = 20240

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
NONLINEARITY = "tanh"    # of the RNN cases
PEERS = ("torch", "onnxruntime", "reference")
# Implementations (peer variants): a peer's time is its fastest variant's.
VARIANTS = {"pyrnn": "pyrnn", "torch": "torch", "torch_cell": "torch",
            "onnxruntime": "onnxruntime", "reference": "reference"}


class CheckFailure(AssertionError):
    """An implementation's results disagree with the oracle or with pyrnn's."""


# -- the case list ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One benchmark: a one-layer, unidirectional float32 `cell` of sizes I -> H, run on
    T steps of a batch of B. streaming: one step per call (T = 1), state carried."""
    name: str
    cell: str        # "lstm", "gru", "rnn"
    kind: str        # "latency", "streaming", "throughput", "training"
    T: int
    B: int
    I: int
    H: int
    quick: bool = False    # in the --quick list

    @property
    def steps(self):
        """Time steps in one sample's data (streaming: STREAM_STEPS calls of T = 1)."""
        return STREAM_STEPS if self.kind == "streaming" else self.T

    @property
    def flops(self):
        """FLOPs of one reported unit: a call, or for streaming one step."""
        forward = GATES[self.cell] * 2 * self.B * self.H * (self.I + self.H) * self.T
        return 3 * forward if self.kind == "training" else forward

    @property
    def shape(self):
        return f"{self.T},{self.B},{self.I},{self.H}" + ("/step" if self.kind == "streaming" else "")


def _grid():
    """DESIGN §6's table for every cell; `quick` marks the reduced --quick list."""
    rows = [  # kind, T, B, [(I, H), ...], sizes in the quick list
        ("latency", 100, 1, [(64, 128), (64, 256), (64, 512)], {128}),
        ("streaming", 1, 1, [(64, 256)], {256}),
        ("throughput", 50, 64, [(256, 256), (512, 512), (1024, 1024)], {256}),
        ("training", 50, 32, [(128, 128), (256, 256), (512, 512)], {128}),
        ("training", 50, 64, [(1024, 1024)], set()),
    ]
    cases = []
    for cell in GATES:
        for kind, T, B, sizes, quick_sizes in rows:
            for I, H in sizes:
                quick = H in quick_sizes and (kind == "latency" or cell == "lstm")
                cases.append(Case(f"{cell}_{kind}_h{H}", cell, kind, T, B, I, H, quick))
    return cases


CASES = _grid()


def select_cases(quick=False, pattern=None, cases=None):
    """The cases to run: the quick list or all, then those whose name matches `pattern`
    (comma-separated globs; a pattern without wildcards matches as a substring)."""
    cases = [c for c in (CASES if cases is None else cases) if c.quick or not quick]
    if pattern:
        globs = [p if any(ch in p for ch in "*?[") else f"*{p}*" for p in pattern.split(",")]
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c.name, g) for g in globs)]
    return cases


# -- data, results and errors ----------------------------------------------------------------
class Workload:
    """A case's pyrnn model, its float32 weights and the data every implementation runs."""

    def __init__(self, case, seed=SEED):
        rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
        layer = {"lstm": pyrnn.LSTM, "gru": pyrnn.GRU, "rnn": pyrnn.RNN}[case.cell]
        options = {"nonlinearity": NONLINEARITY} if case.cell == "rnn" else {}
        self.case = case
        self.model = layer(case.I, case.H, seed=int(rng.integers(2**32)), **options)
        self.params = {name: np.array(value) for name, value in self.model.state_dict().items()}
        self.x = rng.standard_normal((case.steps, case.B, case.I)).astype(np.float32)
        self.dy = (rng.standard_normal((case.steps, case.B, case.H)).astype(np.float32)
                   if case.kind == "training" else None)
        self.lstm = case.cell == "lstm"

    def zeros_state(self, torch=None):
        """Zero (1, B, H) initial state(s): (h, c) for an LSTM, else h."""
        make = (lambda: torch.zeros(1, self.case.B, self.case.H)) if torch else \
            (lambda: np.zeros((1, self.case.B, self.case.H), np.float32))
        return (make(), make()) if self.lstm else make()


@dataclass
class Results:
    """An implementation's answer, by name: outputs y, h_n[, c_n]; gradients dx, dh0[, dc0],
    d<param name>. Gradients only for training, and only those the implementation gives."""
    outputs: dict
    grads: dict = field(default_factory=dict)


def rel_err(got, expected):
    """||got - expected|| / ||expected||, in float64 (expected = 0 needs got = 0)."""
    got = np.asarray(got, np.float64)
    expected = np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return math.inf
    return float(np.linalg.norm(got - expected) / max(np.linalg.norm(expected), np.finfo(float).tiny))


def _errors(got, expected):
    """name -> rel_err for the names both Results have, outputs and gradients apart."""
    outs = {k: rel_err(v, expected.outputs[k]) for k, v in got.outputs.items() if k in expected.outputs}
    grads = {k: rel_err(v, expected.grads[k]) for k, v in got.grads.items() if k in expected.grads}
    return outs, grads


def _state_outputs(state, lstm):
    h, c = state if lstm else (state, None)
    return {"h_n": np.asarray(h), **({"c_n": np.asarray(c)} if lstm else {})}


def oracle_results(workload):
    """The float64 oracle on the workload's float32 weights and inputs (streaming: the whole
    sequence in one call, which the stepped implementations must reproduce)."""
    case = workload.case
    params = {k: v.astype(np.float64) for k, v in workload.params.items()}
    y, h_n, c_n, cache = reference.forward(case.cell, params, workload.x.astype(np.float64),
                                           nonlinearity=NONLINEARITY)
    results = Results({"y": y, "h_n": h_n, **({"c_n": c_n} if workload.lstm else {})})
    if case.kind == "training":
        dx, dh0, dc0, dparams = reference.backward(cache, workload.dy.astype(np.float64))
        results.grads = {"dx": dx, "dh0": dh0, **({"dc0": dc0} if workload.lstm else {}),
                         **{"d" + k: v for k, v in dparams.items()}}
    return results


def _worst(errors):
    return max(errors.items(), key=lambda kv: kv[1]) if errors else (None, 0.0)


def check_against_oracle(case, got, oracle):
    """pyrnn's Results vs the oracle's -> (output errors, gradient errors); CheckFailure when
    an output is off by more than OUT_RTOL or a gradient by more than GRAD_RTOL."""
    outs, grads = _errors(got, oracle)
    missing = (set(oracle.outputs) - set(outs)) | (set(oracle.grads) - set(grads))
    if missing:
        raise CheckFailure(f"{case.name}: pyrnn gave no {sorted(missing)}")
    for errors, tol, what in ((outs, OUT_RTOL, "output"), (grads, GRAD_RTOL, "gradient")):
        name, err = _worst(errors)
        if not err <= tol:
            raise CheckFailure(f"{case.name}: pyrnn {what} {name} is off the float64 oracle by "
                               f"{err:.3g} (relative, by norm) > {tol:g}")
    return outs, grads


def check_peer(case, variant, got, pyrnn_results):
    """A peer's Results vs pyrnn's -> (output errors, gradient errors); CheckFailure when an
    output differs by more than PEER_RTOL or a gradient by more than GRAD_RTOL."""
    outs, grads = _errors(got, pyrnn_results)
    if set(outs) != set(pyrnn_results.outputs):
        raise CheckFailure(f"{case.name}: {variant} gave outputs {sorted(got.outputs)}, "
                           f"expected {sorted(pyrnn_results.outputs)}")
    for errors, tol, what in ((outs, PEER_RTOL, "output"), (grads, GRAD_RTOL, "gradient")):
        name, err = _worst(errors)
        if not err <= tol:
            raise CheckFailure(f"{case.name}: {variant} {what} {name} differs from pyrnn's by "
                               f"{err:.3g} (relative, by norm) > {tol:g}: the peer does not run "
                               "the same model, or one of them is wrong")
    return outs, grads


# -- implementations ---------------------------------------------------------------------------
@dataclass
class Impl:
    """One way to run a case: `run()` is the timed unit (a call, or STREAM_STEPS steps for
    streaming); `results(run())` converts its answer for the checks."""
    name: str
    run: Callable[[], Any]
    results: Callable[[Any], Results]

    @property
    def peer(self):
        return VARIANTS[self.name]


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available_peers():
    """The peers whose packages import here."""
    found = {"torch": _import("torch") is not None,
             "onnxruntime": _import("onnx") is not None and _import("onnxruntime") is not None,
             "reference": True}
    return tuple(p for p in PEERS if found[p])


def variants(case):
    """The implementation names that apply to `case` (whether importable or not)."""
    names = ["pyrnn", "torch"]
    if case.kind == "streaming":
        names.append("torch_cell")
    if case.kind != "training":
        names.append("onnxruntime")
    return names + ["reference"]


def _pyrnn_impl(w):
    m, x, lstm = w.model, w.x, w.lstm
    if w.case.kind == "streaming":
        def run():
            state, ys = w.zeros_state(), []
            for t in range(len(x)):
                y, state = m(x[t:t + 1], state)
                ys.append(y)
            return ys, state
        return Impl("pyrnn", run, lambda r: Results({"y": np.concatenate(r[0]),
                                                     **_state_outputs(r[1], lstm)}))
    if w.case.kind == "training":
        def run():
            y, state, tape = m.forward(x, training=True)
            return (y, state) + m.backward(tape, w.dy)

        def results(r):
            y, state, dx, dstate0, dparams = r
            dh0, dc0 = dstate0 if lstm else (dstate0, None)
            return Results({"y": y, **_state_outputs(state, lstm)},
                           {"dx": dx, "dh0": dh0, **({"dc0": dc0} if lstm else {}),
                            **{"d" + k: v for k, v in dparams.items()}})
        return Impl("pyrnn", run, results)
    return Impl("pyrnn", lambda: m(x), lambda r: Results({"y": r[0], **_state_outputs(r[1], lstm)}))


def _torch_impls(w):
    import torch

    case, lstm = w.case, w.lstm
    modules = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
    options = {"nonlinearity": NONLINEARITY} if case.cell == "rnn" else {}
    module = modules[case.cell](case.I, case.H, **options)
    module.load_state_dict({k: torch.tensor(v) for k, v in w.params.items()})
    x = torch.from_numpy(w.x)

    def numpy_state(state):
        return _state_outputs(tuple(s.detach().numpy() for s in state) if lstm
                              else state.detach().numpy(), lstm)

    if case.kind == "training":
        module.train()
        x = x.clone().requires_grad_(True)
        names, weights = zip(*module.named_parameters())
        dy = torch.from_numpy(w.dy)

        def run():   # forward + autograd backward of sum(y * dy)
            y, state = module(x)
            return y, state, torch.autograd.grad(y, (x,) + weights, grad_outputs=dy)

        def results(r):
            y, state, grads = r
            return Results({"y": y.detach().numpy(), **numpy_state(state)},
                           {"dx": grads[0].numpy(), **{"d" + n: g.numpy() for n, g in zip(names, grads[1:])}})
        return [Impl("torch", run, results)]

    module.eval()
    if case.kind != "streaming":
        def run():
            with torch.no_grad():
                return module(x)
        return [Impl("torch", run, lambda r: Results({"y": r[0].numpy(), **numpy_state(r[1])}))]

    def run_layer():   # nn.LSTM called with T = 1 per step
        with torch.no_grad():
            state, ys = w.zeros_state(torch), []
            for t in range(len(x)):
                y, state = module(x[t:t + 1], state)
                ys.append(y)
        return ys, state

    cells = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}
    cell = cells[case.cell](case.I, case.H, **options)
    cell.load_state_dict({k[:-3]: torch.tensor(v) for k, v in w.params.items()})  # drop _l0
    cell.eval()

    def run_cell():   # nn.LSTMCell stepping
        with torch.no_grad():
            h = torch.zeros(case.B, case.H)
            c, ys = torch.zeros(case.B, case.H), []
            for t in range(len(x)):
                if lstm:
                    h, c = cell(x[t], (h, c))
                else:
                    h = cell(x[t], h)
                ys.append(h)
        return ys, ((h[None], c[None]) if lstm else h[None])

    def stepped(r):
        return Results({"y": torch.cat([y.reshape(1, case.B, case.H) for y in r[0]]).numpy(),
                        **numpy_state(r[1])})
    return [Impl("torch", run_layer, stepped), Impl("torch_cell", run_cell, stepped)]


def ort_session(model, threads):
    """An ONNX Runtime CPU session of `model` on `threads` intra-op threads, one inter-op."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _ort_impls(w, threads):
    from pyrnn import _onnx_export

    case, lstm, x = w.case, w.lstm, w.x
    streaming = case.kind == "streaming"
    model = _onnx_export.recurrent_model(case.cell, w.params, nonlinearity=NONLINEARITY,
                                         seq_len=1 if streaming else case.T, batch=case.B)
    session = ort_session(model, threads)
    zeros = w.zeros_state()
    h0, c0 = zeros if lstm else (zeros, None)

    def feeds(x_part, h, c):
        return {"X": x_part, "initial_h": h, **({"initial_c": c} if lstm else {})}

    def results(y, h, c):
        return Results({"y": y, "h_n": h, **({"c_n": c} if lstm else {})})

    if not streaming:
        return [Impl("onnxruntime", lambda: session.run(None, feeds(x, h0, c0)),
                     lambda r: results(_onnx_export.y_from_onnx(r[0]), r[1], r[2] if lstm else None))]

    def run():   # a T = 1 model fed the carried state
        h, c, ys = h0, c0, []
        for t in range(len(x)):
            out = session.run(None, feeds(x[t:t + 1], h, c))
            h, c = out[1], (out[2] if lstm else None)
            ys.append(out[0])
        return ys, h, c
    return [Impl("onnxruntime", run, lambda r: results(
        np.concatenate([_onnx_export.y_from_onnx(y) for y in r[0]]), r[1], r[2]))]


def _reference_impls(w):
    """The oracle timed as a peer, in float32 (it computes in x's dtype)."""
    case, lstm, x, p = w.case, w.lstm, w.x, w.params

    def forward(x_part, h=None, c=None):
        return reference.forward(case.cell, p, x_part, h, c, nonlinearity=NONLINEARITY)

    def outputs(y, h, c):
        return {"y": y, "h_n": h, **({"c_n": c} if lstm else {})}

    if case.kind == "training":
        def run():
            y, h, c, cache = forward(x)
            return (y, h, c) + reference.backward(cache, w.dy)

        def results(r):
            y, h, c, dx, dh0, dc0, dparams = r
            return Results(outputs(y, h, c), {"dx": dx, "dh0": dh0, **({"dc0": dc0} if lstm else {}),
                                              **{"d" + k: v for k, v in dparams.items()}})
        return [Impl("reference", run, results)]
    if case.kind == "streaming":
        def run():
            state, ys = w.zeros_state(), []
            h, c = state if lstm else (state, None)
            for t in range(len(x)):
                y, h, c, _ = forward(x[t:t + 1], h, c)
                ys.append(y)
            return ys, h, c
        return [Impl("reference", run, lambda r: Results(outputs(np.concatenate(r[0]), r[1], r[2])))]
    return [Impl("reference", lambda: forward(x), lambda r: Results(outputs(*r[:3])))]


def make_impls(peer, workload, threads):
    """The implementations (variants) of `peer` ("pyrnn" or one of PEERS) for the workload's
    case; [] when the peer cannot run this kind of case (ONNX Runtime does not train)."""
    if peer == "pyrnn":
        return [_pyrnn_impl(workload)]
    if peer == "torch":
        return _torch_impls(workload)
    if peer == "onnxruntime":
        return [] if workload.case.kind == "training" else _ort_impls(workload, threads)
    if peer == "reference":
        return _reference_impls(workload)
    raise ValueError(f"peer: expected 'pyrnn' or one of {PEERS}, got {peer!r}")


# -- threads and the machine's rate ------------------------------------------------------------
# (get, set) thread-count entry points of the OpenBLAS builds NumPy ships or links.
_OPENBLAS_THREAD_CALLS = (("openblas_get_num_threads", "openblas_set_num_threads"),
                          ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                          ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                          ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"))


def _loaded_openblas_thread_calls():
    """[(get, set)] for each OpenBLAS loaded in this process (Linux: /proc/self/maps), the way
    to limit NumPy's BLAS when threadpoolctl is not installed; [] when none is found."""
    try:
        with open("/proc/self/maps") as maps:
            mapped = {line.split()[-1] for line in maps}
    except OSError:
        return []
    paths = sorted(p for p in mapped if "openblas" in os.path.basename(p).lower())
    calls = []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get, set_ in _OPENBLAS_THREAD_CALLS:
            if hasattr(library, get) and hasattr(library, set_):
                calls.append((getattr(library, get), getattr(library, set_)))
                break
    return calls


@contextmanager
def thread_limits(threads):
    """Run pyrnn, torch and NumPy's BLAS on `threads` threads; restores the previous counts on
    exit. ORT takes its count per session. NumPy's BLAS is limited through threadpoolctl when it
    is installed, else through the thread calls of a loaded OpenBLAS (the BLAS of NumPy's
    wheels); otherwise the reference peer and the machine's matmul rate use every core.
    Yields how NumPy's BLAS was limited."""
    torch = _import("torch")
    before_pyrnn = pyrnn.get_num_threads()
    before_torch = torch.get_num_threads() if torch else None
    threadpoolctl = _import("threadpoolctl")
    blas = threadpoolctl.threadpool_limits(limits=threads, user_api="blas") if threadpoolctl else None
    openblas = [] if blas else _loaded_openblas_thread_calls()
    before_openblas = [get() for get, _ in openblas]
    for _, set_ in openblas:
        set_(threads)
    pyrnn.set_num_threads(threads)
    if torch:
        torch.set_num_threads(threads)
    try:
        yield ("threadpoolctl" if blas else "OpenBLAS's own thread calls" if openblas
               else "not limited (neither threadpoolctl nor OpenBLAS found)")
    finally:
        pyrnn.set_num_threads(before_pyrnn)
        if torch:
            torch.set_num_threads(before_torch)
        if blas:
            blas.restore_original_limits()
        for (_, set_), before in zip(openblas, before_openblas):
            set_(before)


def matmul_call(n=MATMUL_N):
    """-> a zero-argument call of NumPy's float32 n^3 matmul (random operands, a preallocated
    product). Raises CheckFailure when the product is wrong (a BLAS that miscomputes on this CPU
    has no rate)."""
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    error = rel_err(np.matmul(a, b, out=c)[:2], a[:2].astype(np.float64) @ b.astype(np.float64))
    if error > OUT_RTOL:
        raise CheckFailure(f"NumPy's float32 matmul is wrong on this machine: relative error {error:.1e} "
                           "on its first rows")
    return lambda: np.matmul(a, b, out=c)


def matmul_gflops(n=MATMUL_N, repeats=5):
    """NumPy's float32 n^3 matmul in this process (matmul_call), median of `repeats`, GFLOP/s."""
    run = matmul_call(n)
    return 2 * n**3 / statistics.median(timed_call(run)[0] for _ in range(repeats)) / 1e9


# Variables with which some machines steer OpenBLAS's choice of kernel, against bugs of older
# OpenBLAS builds on newer CPUs. Under them a current NumPy can run an older kernel: on a Zen 5
# with OPENBLAS_CORETYPE=Haswell, AVX2 instead of AVX-512, at 105 GFLOP/s a core instead of 195.
BLAS_KERNEL_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_child_env(threads):
    """The environment for a child process whose NumPy runs OpenBLAS's own kernel for this CPU
    (no BLAS_KERNEL_OVERRIDES) on `threads` threads."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_KERNEL_OVERRIDES}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def machine_matmul_gflops(threads, repeats=5):
    """-> (GFLOP/s, note): the machine's float32 GEMM rate at `threads` threads, NumPy's 2048^3
    matmul. When this process's OpenBLAS runs under BLAS_KERNEL_OVERRIDES, the rate is measured
    in a child process without them (OpenBLAS's own kernel for this CPU, checked like ours) and
    the note gives this process's rate too; should the child fail, this process's rate, and the
    note says why. Call within thread_limits(threads)."""
    local = matmul_gflops(repeats=repeats)
    overrides = {name: os.environ[name] for name in BLAS_KERNEL_OVERRIDES if name in os.environ}
    if not overrides:
        return local, ""
    named = ", ".join(f"{name}={value}" for name, value in overrides.items())
    env = blas_child_env(threads)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this pyrnn's
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    code = f"from pyrnn.bench import matmul_gflops; print(matmul_gflops(repeats={int(repeats)}))"
    try:
        child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                               timeout=300, check=True)
        rate = float(child.stdout.split()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        detail = exc.stderr.strip().splitlines()[-1] if getattr(exc, "stderr", None) else exc
        return local, (f"this process's NumPy runs under {named}; measured so, as a child "
                       f"without them failed: {detail}")
    return rate, (f"in a child process without {named}, under which this process's NumPy runs at "
                  f"{local:.1f}")


# -- one case ----------------------------------------------------------------------------------
@dataclass
class PeerResult:
    ms: float | None                       # fastest variant's median; None = not timed
    note: str = ""                         # why not timed, or which variant was fastest
    variants: dict = field(default_factory=dict)      # variant -> median ms
    err_vs_pyrnn: dict = field(default_factory=dict)  # name -> rel err of outputs/grads
    err_vs_oracle: dict = field(default_factory=dict)


@dataclass
class CaseResult:
    case: Case
    flops: float
    pyrnn_ms: float
    gflops: float
    matmul_gflops: float                   # the rate matmul_pct is against (see the module docstring)
    matmul_pct: float
    out_err: float                         # max over outputs, pyrnn vs float64 oracle
    grad_err: float | None                 # max over gradients (training only)
    errors: dict                           # name -> pyrnn's rel err vs the oracle
    peers: dict                            # peer -> PeerResult
    best_peer: str | None
    ratio: float | None                    # best peer ms / pyrnn ms (> 1: pyrnn faster)
    rounds: int
    calls_per_sample: dict                 # variant -> calls in one sample
    samples_ms: dict                       # variant -> every sample, ms per unit
    min_ms: dict                           # variant -> fastest sample (less noise-prone than the median)
    oracle_s: float                        # one float64 oracle call (the check), seconds


def timed_call(fn):
    """-> (seconds, fn())."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def settle():
    """Waits until no thread of this process has used the CPU for SETTLE_S, or SETTLE_LIMIT_S has
    passed: idle peers' workers still spinning would share the cores with the next sample (at 2
    threads on 2 cores, pyrnn ran 2-75x slower)."""
    deadline = time.perf_counter() + SETTLE_LIMIT_S
    while SETTLE_S > 0:
        cpu = time.process_time()  # all threads of the process
        time.sleep(SETTLE_S)
        if time.process_time() - cpu < 0.1 * SETTLE_S or time.perf_counter() >= deadline:
            return


def _burst_seconds_per_call(fn, min_s):
    """Seconds per call over >= 3 back-to-back calls lasting >= min_s, after settle() and one
    untimed call that wakes the threads."""
    settle()
    fn()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_s:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def _sample(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def _interleaved_samples(runs, number, rounds):
    """name -> `rounds` samples (seconds per call) of each zero-argument call in `runs` (name ->
    call): each round takes one sample of every call, the starting one rotated from round to
    round; garbage collection off."""
    names = list(runs)
    samples = {name: [] for name in names}
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                settle()
                samples[name].append(_sample(runs[name], number[name]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def run_case(case, *, threads, peers, rounds, sample_s, budget_s, matmul_rate, matmul_run=None, log=None):
    """Check, then time, one case -> CaseResult (see the module docstring for how). matmul_rate:
    the run's machine rate; matmul_run: matmul_call()'s call, which a GEMM-bound case times in
    its rounds (None: matmul_rate for every case)."""
    log = log or (lambda message: None)
    w = Workload(case)
    pyrnn_impl = make_impls("pyrnn", w, threads)[0]

    log(f"{case.name}: checking against the float64 oracle")
    first = {}    # variant -> seconds of its first (checked) call
    first["pyrnn"], raw = timed_call(pyrnn_impl.run)
    mine = pyrnn_impl.results(raw)
    oracle_s, oracle = timed_call(lambda: oracle_results(w))
    outs, grads = check_against_oracle(case, mine, oracle)

    peer_results = {}
    impls = [pyrnn_impl]
    for peer in PEERS:
        if peer not in peers:
            peer_results[peer] = PeerResult(None, "not installed")
            continue
        if peer == "reference" and oracle_s > 2 * REFERENCE_MAX_S:
            # float32 runs at most ~2x faster than the float64 check just timed
            peer_results[peer] = PeerResult(None, f"> {REFERENCE_MAX_S:g} s per call "
                                                  f"(float64 check took {oracle_s:.1f} s)")
            continue
        found = make_impls(peer, w, threads)
        if not found:
            peer_results[peer] = PeerResult(None, f"no {case.kind}")
            continue
        result = peer_results[peer] = PeerResult(None)
        for impl in found:
            log(f"{case.name}: checking {impl.name} against pyrnn")
            first[impl.name], raw = timed_call(impl.run)
            got = impl.results(raw)
            errs = check_peer(case, impl.name, got, mine)
            result.err_vs_pyrnn[impl.name] = {**errs[0], **errs[1]}
            oracle_errs = _errors(got, oracle)
            result.err_vs_oracle[impl.name] = {**oracle_errs[0], **oracle_errs[1]}
            impls.append(impl)

    # Calibrate (see the module docstring), then calls per sample so that a sample takes >= sample_s.
    number, round_s = {}, 0.0
    for impl in list(impls):
        seconds = first[impl.name]
        if seconds < WARM_S:
            seconds = _burst_seconds_per_call(impl.run, CALIBRATE_FRACTION * sample_s)
        if impl.name == "reference" and seconds > REFERENCE_MAX_S:
            peer_results["reference"].note = f"> {REFERENCE_MAX_S:g} s per call ({seconds:.1f} s)"
            impls.remove(impl)
            continue
        number[impl.name] = max(1, math.ceil(sample_s / max(seconds, 1e-9)))
        round_s += number[impl.name] * seconds
    runs = {impl.name: impl.run for impl in impls}
    if matmul_run is not None and case.kind in GEMM_BOUND_KINDS:
        runs[MATMUL] = matmul_run
        seconds = 2 * MATMUL_N**3 / (matmul_rate * 1e9)
        number[MATMUL] = max(1, math.ceil(sample_s / seconds))
        round_s += number[MATMUL] * seconds
    # At least 3 rounds; fewer than asked when a round is so slow that they would overrun the budget.
    rounds = max(min(3, rounds), min(rounds, int(budget_s / round_s)))
    log(f"{case.name}: timing {', '.join(runs)} x {rounds} rounds")

    samples = _interleaved_samples(runs, number, rounds)

    per_unit = STREAM_STEPS if case.kind == "streaming" else 1
    samples_ms = {name: [1e3 * s / per_unit for s in values] for name, values in samples.items()}
    medians = {name: statistics.median(values) for name, values in samples_ms.items()}
    for peer, result in peer_results.items():
        timed = {name: medians[name] for name in result.err_vs_pyrnn if name in medians}
        if timed:
            result.variants = timed
            fastest = min(timed, key=timed.get)
            result.ms = timed[fastest]
            if len(timed) > 1:
                result.note = f"fastest variant: {fastest}"

    pyrnn_ms = medians["pyrnn"]
    timed_peers = {p: r.ms for p, r in peer_results.items() if r.ms is not None}
    best = min(timed_peers, key=timed_peers.get) if timed_peers else None
    gflops = case.flops / (pyrnn_ms * 1e-3) / 1e9
    if MATMUL in samples:
        matmul_rate = 2 * MATMUL_N**3 / statistics.median(samples[MATMUL]) / 1e9
    return CaseResult(
        case=case, flops=case.flops, pyrnn_ms=pyrnn_ms, gflops=gflops, matmul_gflops=matmul_rate,
        matmul_pct=100 * gflops / matmul_rate if matmul_rate else math.nan,
        out_err=max(outs.values()), grad_err=max(grads.values()) if grads else None,
        errors={**outs, **grads}, peers=peer_results, best_peer=best,
        ratio=timed_peers[best] / pyrnn_ms if best else None, rounds=rounds,
        calls_per_sample=number, samples_ms=samples_ms,
        min_ms={name: min(values) for name, values in samples_ms.items()}, oracle_s=oracle_s)


# -- the whole run -----------------------------------------------------------------------------
@dataclass
class Report:
    meta: dict
    results: list


def _version(module_name):
    module = _import(module_name)
    return getattr(module, "__version__", None) if module else None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average():
    """1, 5 and 15 minute load averages (other work on shared cores skews every timing)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run_bench(cases, *, threads, quick=False, rounds=None, peers=None, matmul_repeats=None, log=None):
    """Check and time every case -> Report. peers: the peers to try (default: those that import)."""
    peers = available_peers() if peers is None else tuple(p for p in peers if p in available_peers())
    rounds = rounds or (5 if quick else 7)
    sample_s, budget_s = (0.01, 5.0) if quick else (0.05, 45.0)
    with thread_limits(threads) as blas:
        rate, rate_note = machine_matmul_gflops(threads, repeats=matmul_repeats or (3 if quick else 5))
        matmul_run = None if rate_note else matmul_call()  # with a note, not this process's matmul
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "isa": pyrnn.active_isa(), "threads": threads, "blas_threads": blas,
            "build_info": pyrnn.build_info(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "versions": {name: _version(name) for name in
                         ("numpy", "torch", "onnxruntime", "onnx", "threadpoolctl")},
            "load_average": _load_average(),
            "matmul_gflops": rate, "matmul_note": rate_note, "matmul_in_rounds": matmul_run is not None,
            "peers": list(peers), "quick": quick,
            "rounds": rounds,
            "sample_s": sample_s, "budget_s": budget_s, "stream_steps": STREAM_STEPS,
            "tolerances": {"out_rtol": OUT_RTOL, "grad_rtol": GRAD_RTOL, "peer_rtol": PEER_RTOL},
        }
        results = [run_case(case, threads=threads, peers=peers, rounds=rounds, sample_s=sample_s,
                            budget_s=budget_s, matmul_rate=rate, matmul_run=matmul_run, log=log)
                   for case in cases]
        meta["load_average_end"] = _load_average()
    return Report(meta, results)


# -- output --------------------------------------------------------------------------------------
DASH = "\u2014"
_PEER_HEADINGS = {"torch": "torch ms", "onnxruntime": "ORT ms", "reference": "ref ms"}


def _ms(value):
    if value is None:
        return DASH
    for limit, digits in ((100, 0), (10, 1), (1, 2), (0.1, 3)):
        if value >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.4f}"


def _sci(value):
    return DASH if value is None else f"{value:.1e}"


def format_table(report):
    m = report.meta
    b = m["build_info"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v and k != "threadpoolctl")
    in_rounds = "; % mm of throughput and training: against that matmul timed in their rounds"
    lines = [
        f"pyrnn bench: ISA {m['isa']}, {m['threads']} thread(s) (NumPy BLAS: {m['blas_threads']}), "
        f"{m['cpu']}",
        f"build: {', '.join(f'{k}={v}' for k, v in b.items())}",
        f"versions: python {m['python']}, {versions}",
        f"machine rate: NumPy float32 matmul {MATMUL_N}^3 = {m['matmul_gflops']:.1f} GFLOP/s"
        f"{' (' + m['matmul_note'] + ')' if m.get('matmul_note') else ''} at the start"
        f"{in_rounds if m.get('matmul_in_rounds') else ''}; "
        f"load average {m['load_average']} at start, {m.get('load_average_end')} at end "
        f"({m['cpu_count']} CPUs)",
        f"times: median ms per call (streaming: per step, {m['stream_steps']} steps carried), "
        f"peers and pyrnn interleaved; ratio = best peer ms / pyrnn ms (> 1: pyrnn faster)",
        f"err: pyrnn vs float64 oracle, relative by norm, max over outputs (<= {OUT_RTOL:g}) "
        f"and gradients (<= {GRAD_RTOL:g}); peers agree with pyrnn to {PEER_RTOL:g}",
        f"{DASH}: not run (ONNX Runtime does not train; the oracle only where a call takes "
        f"< {REFERENCE_MAX_S:g} s; see the notes)",
    ]
    start, end = m.get("load_average"), m.get("load_average_end") or m.get("load_average")
    if start and m.get("cpu_count") and max(start[0], end[0]) > 0.5 * m["cpu_count"]:
        lines.append(f"WARNING: the machine was busy (1-minute load {start[0]} -> {end[0]} on "
                     f"{m['cpu_count']} CPUs): other processes share the cores, so timings "
                     "(multi-threaded ones most) are noisy")
    lines.append("")
    header = ["case", "T,B,I,H", "pyrnn ms", "GFLOP/s", "% mm", "err", "grad err",
              *(_PEER_HEADINGS[p] for p in PEERS), "best peer", "ratio"]
    rows = [header]
    notes = []
    for r in report.results:
        rows.append([r.case.name, r.case.shape, _ms(r.pyrnn_ms), f"{r.gflops:.2f}", f"{r.matmul_pct:.1f}",
                     _sci(r.out_err), _sci(r.grad_err), *(_ms(r.peers[p].ms) for p in PEERS),
                     r.best_peer or DASH, DASH if r.ratio is None else f"{r.ratio:.3g}"])
        for p in PEERS:
            if r.peers[p].note and r.peers[p].note not in ("not installed", "no training"):
                notes.append(f"  {r.case.name} {p}: {r.peers[p].note}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    missing = [p for p in PEERS if p not in m["peers"]]
    if missing:
        notes.insert(0, f"  not installed: {', '.join(missing)}")
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Case):
            out.update(steps=value.steps, flops=value.flops)
        return out
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(report, path):
    with open(path, "w") as f:
        json.dump({"meta": _jsonable(report.meta), "results": _jsonable(report.results)}, f, indent=1)
        f.write("\n")


def write_plot(report, path):
    """Bars of each peer's ms / pyrnn's ms per case (log scale; > 1: pyrnn faster) -> PNG.
    Returns False (writes nothing) when matplotlib is not importable."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    peers = [p for p in PEERS if any(r.peers[p].ms for r in report.results)]
    names = [r.case.name for r in report.results]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    width = 0.8 / max(1, len(peers))
    for k, peer in enumerate(peers):
        xs, ys = [], []
        for i, r in enumerate(report.results):
            if r.peers[peer].ms:
                xs.append(i + (k - (len(peers) - 1) / 2) * width)
                ys.append(r.peers[peer].ms / r.pyrnn_ms)
        ax.bar(xs, ys, width, label=peer)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("peer ms / pyrnn ms  (> 1: pyrnn faster)")
    m = report.meta
    ax.set_title(f"pyrnn vs peers: ISA {m['isa']}, {m['threads']} thread(s)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(*, quick=False, threads=None, json_path=None, plot_path=None, pattern=None, rounds=None):
    """`python -m pyrnn bench`: run, print the table, write the JSON / PNG asked for -> exit code."""
    cases = select_cases(quick, pattern)
    if not cases:
        print(f"pyrnn bench: no case matches {pattern!r}", file=sys.stderr)
        return 2
    threads = threads or pyrnn.get_num_threads()

    started = time.perf_counter()

    def log(message):
        print(f"[bench {time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    try:
        report = run_bench(cases, threads=threads, quick=quick, rounds=rounds, log=log)
    except CheckFailure as exc:
        print(f"pyrnn bench: CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    print(format_table(report))
    written = []
    if json_path:
        write_json(report, json_path)
        written.append(json_path)
    png = plot_path or (os.path.splitext(json_path)[0] + ".png" if json_path else None)
    if png:
        if write_plot(report, png):
            written.append(png)
        else:
            print("pyrnn bench: matplotlib is not installed; no plot written", file=sys.stderr)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
