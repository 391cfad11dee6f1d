"""The benchmark machinery (pyrnn.bench, pyrnn._onnx_export, python -m pyrnn): the case
grid, the runner end to end on tiny cases (checks, timing, table, JSON, plot), that its checks
fail loudly on a wrong answer, and that the ONNX model builder computes pyrnn's layers."""
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import rel_err
from pyrnn import bench
from pyrnn.bench import Case

REPO = Path(__file__).resolve().parents[1]
HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
requires_ort = pytest.mark.skipif(not HAS_ORT, reason="onnx / onnxruntime is not installed")

TINY = [
    Case("lstm_latency_tiny", "lstm", "latency", T=4, B=1, I=3, H=5),
    Case("gru_streaming_tiny", "gru", "streaming", T=1, B=2, I=3, H=5),
    Case("rnn_throughput_tiny", "rnn", "throughput", T=3, B=4, I=5, H=5),
    Case("lstm_training_tiny", "lstm", "training", T=4, B=3, I=4, H=6),
    Case("gru_training_tiny", "gru", "training", T=3, B=2, I=3, H=4),
]


def test_grid_is_designs_table():
    names = [c.name for c in bench.CASES]
    assert len(names) == len(set(names)) == 3 * 11
    kinds = {(c.kind, c.T, c.B, c.I, c.H) for c in bench.CASES if c.cell == "gru"}
    assert kinds == ({("latency", 100, 1, 64, h) for h in (128, 256, 512)}
                     | {("streaming", 1, 1, 64, 256)}
                     | {("throughput", 50, 64, h, h) for h in (256, 512, 1024)}
                     | {("training", 50, 32, h, h) for h in (128, 256, 512)}
                     | {("training", 50, 64, 1024, 1024)})
    assert [c.name for c in bench.select_cases(quick=True)] == [
        "lstm_latency_h128", "lstm_streaming_h256", "lstm_throughput_h256", "lstm_training_h128",
        "gru_latency_h128", "rnn_latency_h128"]
    lstm = bench.select_cases(pattern="lstm_latency_h256")[0]
    assert lstm.flops == 100 * 4 * 2 * 1 * 256 * (64 + 256)
    training = bench.select_cases(pattern="rnn_training_h128")[0]
    assert training.flops == 3 * 50 * 2 * 32 * 128 * 256
    assert [c.name for c in bench.select_cases(pattern="gru_t*_h1024,rnn_stream")] == [
        "gru_throughput_h1024", "gru_training_h1024", "rnn_streaming_h256"]


def test_runner_checks_times_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "STREAM_STEPS", 5)
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    report = bench.run_bench(TINY, threads=1, quick=True, rounds=2, matmul_repeats=1)
    peers = bench.available_peers()
    assert report.meta["threads"] == 1 and report.meta["matmul_gflops"] > 0
    in_rounds = report.meta["matmul_in_rounds"]
    assert in_rounds == (report.meta["matmul_note"] == "")  # not under BLAS_KERNEL_OVERRIDES
    assert [r.case for r in report.results] == TINY
    for r in report.results:
        assert r.pyrnn_ms > 0 and r.gflops > 0 and r.rounds == 2
        # GEMM-bound cases time the matmul in their rounds and measure their % against it
        timed_matmul = in_rounds and r.case.kind in bench.GEMM_BOUND_KINDS
        assert (bench.MATMUL in r.samples_ms) == timed_matmul
        if timed_matmul:
            median_s = 1e-3 * statistics.median(r.samples_ms[bench.MATMUL])
            assert r.matmul_gflops == pytest.approx(2 * bench.MATMUL_N**3 / median_s / 1e9)
        else:
            assert r.matmul_gflops == report.meta["matmul_gflops"]
        assert r.matmul_pct == pytest.approx(100 * r.gflops / r.matmul_gflops)
        assert 0 <= r.out_err <= bench.OUT_RTOL
        training = r.case.kind == "training"
        assert (r.grad_err is not None) == training
        assert training == ("dweight_hh_l0" in r.errors)
        assert all(len(s) == 2 for s in r.samples_ms.values())
        for peer in bench.PEERS:
            result = r.peers[peer]
            if peer not in peers:
                assert result.ms is None and result.note == "not installed"
            elif peer == "onnxruntime" and training:
                assert result.ms is None and result.note == "no training"
            else:
                assert result.ms > 0, (r.case.name, peer, result.note)
                assert all(e <= bench.GRAD_RTOL for v in result.err_vs_pyrnn.values() for e in v.values())
        if "torch" in peers and r.case.kind == "streaming":
            assert set(r.peers["torch"].variants) == {"torch", "torch_cell"}
        timed = {p: r.peers[p].ms for p in peers if r.peers[p].ms}
        assert r.best_peer == min(timed, key=timed.get)
        assert r.ratio == pytest.approx(timed[r.best_peer] / r.pyrnn_ms)

    table = bench.format_table(report)
    lines = table.splitlines()
    assert "ISA" in lines[0] and "GFLOP/s" in table and "ratio" in table
    for r in report.results:
        row = next(line for line in lines if line.startswith(r.case.name))
        assert r.case.shape in row
    assert "does not train" in table

    path = tmp_path / "bench.json"
    bench.write_json(report, path)
    data = json.loads(path.read_text())
    assert data["meta"]["isa"] == report.meta["isa"]
    assert data["meta"]["build_info"] and "numpy" in data["meta"]["versions"]
    assert [r["case"]["name"] for r in data["results"]] == [c.name for c in TINY]
    assert data["results"][0]["pyrnn_ms"] == pytest.approx(report.results[0].pyrnn_ms)

    if importlib.util.find_spec("matplotlib"):
        png = tmp_path / "bench.png"
        assert bench.write_plot(report, png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numpys_openblas_is_limited_without_threadpoolctl(monkeypatch):
    """The README's first command installs no threadpoolctl: the runner then limits NumPy's
    OpenBLAS through its own thread calls, so that the reference peer and the matmul rate run
    on the threads asked for, and restores its count afterwards."""
    calls = bench._loaded_openblas_thread_calls()
    if not calls:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS")
    real_import = bench._import
    monkeypatch.setattr(bench, "_import", lambda name: None if name == "threadpoolctl" else real_import(name))
    before = [get() for get, _ in calls]
    wanted = 2 if before == [1] * len(calls) else 1
    with bench.thread_limits(wanted) as how:
        assert how == "OpenBLAS's own thread calls"
        assert [get() for get, _ in calls] == [wanted] * len(calls)
    assert [get() for get, _ in calls] == before


def test_machine_rate_is_measured_without_blas_kernel_overrides(monkeypatch):
    """Under OPENBLAS_CORETYPE (set on some machines against old OpenBLAS bugs) a current NumPy
    may run an older, slower kernel: the machine's rate then comes from a child process without
    the override, at the same threads, and the note names the override and this process's rate.
    A child that fails leaves this process's rate, with the reason; no override, no child."""
    monkeypatch.setattr(bench, "matmul_gflops", lambda repeats: 50.0)
    children = []

    def child(args, env, **kwargs):
        children.append(env)
        return subprocess.CompletedProcess(args, 0, stdout="123.5\n", stderr="")

    monkeypatch.setattr(bench.subprocess, "run", child)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    rate, note = bench.machine_matmul_gflops(2, repeats=1)
    assert rate == 123.5 and "without OPENBLAS_CORETYPE=Haswell" in note and "50.0" in note
    assert "OPENBLAS_CORETYPE" not in children[0] and children[0]["OPENBLAS_NUM_THREADS"] == "2"

    def failing(args, env, **kwargs):
        raise subprocess.CalledProcessError(1, args, stderr="Traceback ...\nImportError: no numpy")

    monkeypatch.setattr(bench.subprocess, "run", failing)
    rate, note = bench.machine_matmul_gflops(1, repeats=1)
    assert rate == 50.0 and "ImportError: no numpy" in note

    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert bench.machine_matmul_gflops(1, repeats=1) == (50.0, "")


def test_machine_rate_child_runs(monkeypatch):
    """The child process of machine_matmul_gflops imports this pyrnn and measures a rate."""
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")  # read at NumPy's import: changes only the child
    with bench.thread_limits(1):
        rate, note = bench.machine_matmul_gflops(1, repeats=1)
    assert rate > 0 and note.startswith("in a child process without"), note


def test_oracle_check_fails_on_a_wrong_pyrnn():
    case = TINY[3]
    workload = bench.Workload(case)
    impl = bench.make_impls("pyrnn", workload, threads=1)[0]
    oracle = bench.oracle_results(workload)
    outs, grads = bench.check_against_oracle(case, impl.results(impl.run()), oracle)
    assert max(outs.values()) <= bench.OUT_RTOL and max(grads.values()) <= bench.GRAD_RTOL

    wrong = dict(workload.params, weight_hh_l0=workload.params["weight_hh_l0"] * 1.01)
    workload.model.load_state_dict(wrong)    # pyrnn now runs other weights than the oracle
    with pytest.raises(bench.CheckFailure, match="off the float64 oracle"):
        bench.check_against_oracle(case, impl.results(impl.run()), oracle)


@requires_ort
def test_peer_check_fails_on_a_wrong_onnx_model(monkeypatch):
    monkeypatch.setitem(bench_onnx().ONNX_GATE_ORDER, "lstm", (0, 1, 2, 3))   # PyTorch's order
    with pytest.raises(bench.CheckFailure, match="onnxruntime output"):
        bench.run_case(TINY[0], threads=1, peers=("onnxruntime",), rounds=1, sample_s=0.0,
                       budget_s=1.0, matmul_rate=1.0)


def bench_onnx():
    from pyrnn import _onnx_export
    return _onnx_export


@requires_ort
@pytest.mark.parametrize("cell, options", [
    ("lstm", {}), ("gru", {}), ("rnn", {}), ("rnn", {"nonlinearity": "relu"}),
    ("lstm", {"bidirectional": True}), ("gru", {"bidirectional": True, "bias": False}),
    ("lstm", {"bias": False})], ids=lambda v: v if isinstance(v, str) else
    "-".join(f"{k}={v}" for k, v in v.items()) or "default")
def test_onnx_model_computes_pyrnn_layer(rng, cell, options):
    import pyrnn
    from pyrnn import reference

    export = bench_onnx()
    layer = {"lstm": pyrnn.LSTM, "gru": pyrnn.GRU, "rnn": pyrnn.RNN}[cell]
    m = layer(7, 9, seed=int(rng.integers(2**32)), **options)
    D = 2 if options.get("bidirectional") else 1
    x = rng.standard_normal((6, 3, 7)).astype(np.float32)
    h0 = rng.standard_normal((D, 3, 9)).astype(np.float32)
    c0 = rng.standard_normal((D, 3, 9)).astype(np.float32)
    model = export.recurrent_model(cell, m.state_dict(), nonlinearity=options.get("nonlinearity", "tanh"),
                                   bidirectional=D == 2)
    session = bench.ort_session(model, threads=1)
    lstm = cell == "lstm"
    out = session.run(None, {"X": x, "initial_h": h0, **({"initial_c": c0} if lstm else {})})
    y, state = m(x, (h0, c0) if lstm else h0)
    h_n, c_n = state if lstm else (state, None)

    got = {"y": export.y_from_onnx(out[0]), "h_n": out[1], **({"c_n": out[2]} if lstm else {})}
    mine = {"y": y, "h_n": h_n, **({"c_n": c_n} if lstm else {})}
    params = {k: v.astype(np.float64) for k, v in m.state_dict().items()}
    oracle = reference.forward(cell, params, x.astype(np.float64), h0.astype(np.float64),
                               c0.astype(np.float64), bidirectional=D == 2,
                               nonlinearity=options.get("nonlinearity", "tanh"))
    for k, name in enumerate(("y", "h_n", "c_n")[:len(got)]):
        assert got[name].shape == mine[name].shape
        assert rel_err(got[name], mine[name]) <= bench.PEER_RTOL, name
        assert rel_err(got[name], oracle[k]) <= bench.PEER_RTOL, name


def test_onnx_builder_rejects_what_it_cannot_express():
    pytest.importorskip("onnx")
    import pyrnn

    export = bench_onnx()
    with pytest.raises(ValueError, match="one-layer"):
        export.recurrent_model("lstm", pyrnn.LSTM(3, 4, num_layers=2).state_dict())
    with pytest.raises(ValueError, match="one-layer"):
        export.recurrent_model("lstm", pyrnn.LSTM(3, 4, proj_size=2).state_dict())
    with pytest.raises(ValueError, match="cell"):
        export.recurrent_model("elman", pyrnn.RNN(3, 4).state_dict())


def test_cli_help_lists_bench():
    run = subprocess.run([sys.executable, "-m", "pyrnn", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "bench" in run.stdout
    run = subprocess.run([sys.executable, "-m", "pyrnn", "bench", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for option in ("--quick", "--threads", "--json", "--plot", "--cases"):
        assert option in run.stdout


def test_main_refuses_a_pattern_matching_nothing(capsys):
    assert bench.main(pattern="no_such_case") == 2
    assert "no case matches" in capsys.readouterr().err
