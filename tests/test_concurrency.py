"""Concurrency: many Python threads in the kernels at once give bitwise the results of serial
calls (one shared model, and several models), for inference and for training forward +
backward; native calls release the GIL (a Python thread keeps running during one, and another
thread's native calls run during it); set_num_threads from another thread never corrupts a running call.

Each Python thread's call opens its own OpenMP team, so with 2 kernel threads 8 Python threads
run up to 16 OS threads on this machine's cores: the spin barriers must also survive
oversubscription."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyrnn

PY_THREADS = 8
ROUNDS = 4  # calls per Python thread, each checked against its serial result


@pytest.fixture
def restore_threads():
    previous = pyrnn.get_num_threads()
    yield
    pyrnn.set_num_threads(previous)


def models():
    """Small models of every kind, large enough that 2 kernel threads split their steps."""
    return [
        pyrnn.LSTM(12, 48, num_layers=2, bidirectional=True, proj_size=20, seed=1),
        pyrnn.GRU(12, 64, seed=2),
        pyrnn.RNN(12, 96, nonlinearity="relu", bidirectional=True, seed=3),
        pyrnn.LSTM(12, 40, dtype=np.float64, seed=4),
    ]


def job_inputs(model, seed):
    """One job's inputs: its own batch size, data and lengths."""
    rng = np.random.default_rng(seed)
    steps, batch = 12, 3 + seed % 6
    x = rng.standard_normal((steps, batch, model.input_size)).astype(model.dtype)
    lengths = rng.integers(0, steps + 1, batch)
    out = (2 if model.bidirectional else 1) * (model.proj_size or model.hidden_size)
    dy = rng.standard_normal((steps, batch, out)).astype(model.dtype)
    return x, lengths, dy


def run(model, inputs, training):
    x, lengths, dy = inputs
    if not training:
        y, state = model(x, lengths=lengths)
        return [y, *(state if isinstance(state, tuple) else (state,))]
    y, state, tape = model.forward(x, lengths=lengths)
    dx, dstate0, dparams = model.backward(tape, dy)
    states = (state if isinstance(state, tuple) else (state,)) + \
        (dstate0 if isinstance(dstate0, tuple) else (dstate0,))
    return [y, *states, dx, *dparams.values()]


def run_concurrently(jobs, training):
    """jobs: (model, inputs, expected) triples; every Python thread runs its job ROUNDS times,
    all starting together, and each result must equal `expected` bit for bit."""
    start = threading.Barrier(len(jobs))

    def work(job):
        model, inputs, expected = job
        start.wait()
        for _ in range(ROUNDS):
            got = run(model, inputs, training)
            assert len(got) == len(expected)
            for i, (a, b) in enumerate(zip(got, expected)):
                np.testing.assert_array_equal(a, b, err_msg=f"result {i} differs from the serial call")

    with ThreadPoolExecutor(len(jobs)) as pool:
        for future in [pool.submit(work, job) for job in jobs]:
            future.result()


@pytest.mark.parametrize("kernel_threads", [1, 2])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_many_threads_on_one_model_match_serial_calls(restore_threads, kernel_threads, training):
    pyrnn.set_num_threads(kernel_threads)
    model = models()[0]
    jobs = []
    for seed in range(PY_THREADS):
        inputs = job_inputs(model, seed)
        jobs.append((model, inputs, run(model, inputs, training)))
    run_concurrently(jobs, training)


@pytest.mark.parametrize("kernel_threads", [1, 2])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_many_threads_on_several_models_match_serial_calls(restore_threads, kernel_threads, training):
    pyrnn.set_num_threads(kernel_threads)
    all_models = models()
    jobs = []
    for seed in range(PY_THREADS):
        model = all_models[seed % len(all_models)]
        inputs = job_inputs(model, seed)
        jobs.append((model, inputs, run(model, inputs, training)))
    run_concurrently(jobs, training)


# -- the GIL -----------------------------------------------------------------------------------
def long_call_model():
    """A model and input whose one call takes 0.05-0.3 s on one kernel thread: long enough that
    the Python parts of the call (during which threads take turns at the GIL every 5 ms) are a
    small part of it. Sanitizer builds run the kernels several times slower: fewer steps."""
    model = pyrnn.LSTM(64, 192, seed=5)
    steps = 250 if pyrnn.build_info()["sanitized"] else 1000
    x = np.random.default_rng(5).standard_normal((steps, 8, 64)).astype(np.float32)
    return model, x


@pytest.mark.parametrize("call", ["inference", "training_forward", "backward"])
def test_a_python_thread_runs_during_a_native_call(restore_threads, call):
    """If a call held the GIL, a spinning Python thread would make almost no progress while it
    runs (at most one switch interval's worth). We require at least 30% of its idle rate."""
    pyrnn.set_num_threads(1)
    model, x = long_call_model()
    y, _, tape = model.forward(x)
    dy = np.ones_like(y)
    call_once = {
        "inference": lambda: model(x),
        "training_forward": lambda: model.forward(x),
        "backward": lambda: model.backward(tape, dy),
    }[call]

    counter = {"n": 0, "stop": False}

    def spin():
        while not counter["stop"]:
            counter["n"] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.02)
        n0, t0 = counter["n"], time.perf_counter()
        time.sleep(0.15)                     # the main thread waits without the GIL
        idle_rate = (counter["n"] - n0) / (time.perf_counter() - t0)
        rates = []
        while len(rates) < 3 and max(rates, default=0) <= 0.3 * idle_rate:  # noisy machine: 3 tries
            n1, t1 = counter["n"], time.perf_counter()
            call_once()
            rates.append((counter["n"] - n1) / (time.perf_counter() - t1))
    finally:
        counter["stop"] = True
        spinner.join()
    assert max(rates) > 0.3 * idle_rate, \
        f"Python thread ran at {max(rates):.3g}/s during the call, {idle_rate:.3g}/s idle"


def test_two_native_calls_overlap_in_time(restore_threads):
    """While one long native call runs, a second Python thread keeps completing short native
    calls of its own: the two threads are inside the kernels at the same time. Rates, not wall
    times, so that a machine loaded by other work still gives the same verdict: if the long call
    held the GIL, the short calls could only complete before and after it."""
    pyrnn.set_num_threads(1)
    model, x = long_call_model()
    small = pyrnn.GRU(8, 16, seed=6)
    x_small = np.random.default_rng(6).standard_normal((20, 2, 8)).astype(np.float32)
    model(x)                           # warm up both
    small(x_small)
    state = {"calls": 0, "stop": False}

    def short_calls():
        while not state["stop"]:
            small(x_small)
            state["calls"] += 1

    worker = threading.Thread(target=short_calls)
    worker.start()
    try:
        time.sleep(0.02)
        c0, t0 = state["calls"], time.perf_counter()
        time.sleep(0.15)
        idle_rate = (state["calls"] - c0) / (time.perf_counter() - t0)
        rates = []
        while len(rates) < 3 and max(rates, default=0) <= 0.3 * idle_rate:  # noisy machine: 3 tries
            c1, t1 = state["calls"], time.perf_counter()
            model(x)
            rates.append((state["calls"] - c1) / (time.perf_counter() - t1))
    finally:
        state["stop"] = True
        worker.join()
    assert max(rates) > 0.3 * idle_rate, \
        f"short native calls ran at {max(rates):.3g}/s during the long one, {idle_rate:.3g}/s alone"


# -- set_num_threads while another thread runs ------------------------------------------------
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_set_num_threads_from_another_thread_does_not_corrupt_a_running_call(restore_threads, training):
    all_models = models()
    jobs = []
    for seed, model in enumerate(all_models):
        inputs = job_inputs(model, 100 + seed)
        pyrnn.set_num_threads(1)
        jobs.append((model, inputs, run(model, inputs, training)))
    done = threading.Event()
    switches = {"n": 0}

    def switch():
        counts = [1, 2, 3, 2]
        while not done.is_set():
            pyrnn.set_num_threads(counts[switches["n"] % len(counts)])
            switches["n"] += 1
            time.sleep(0.0005)

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        for _ in range(6):
            run_concurrently(jobs, training)
    finally:
        done.set()
        switcher.join()
    assert switches["n"] > 10
