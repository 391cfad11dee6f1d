"""Leaks and lifetime: resident memory stays flat over thousands of forward / backward calls, a
training loop reuses its workspace instead of faulting in fresh pages, a tape outlives the model
that recorded it, and replacing the weights between a forward and its
backward gives the gradients of the weights that forward used (DESIGN.md §2)."""
import ctypes
import gc
import os
import resource
import sys
import weakref

import numpy as np
import pytest

import pyrnn

STEPS, BATCH, INPUT, HIDDEN = 16, 4, 10, 32


# Every kind of layer and feature, small: (factory, uses lengths). Factories, so that a test can
# hold the only reference to a model.
CONFIGS = [
    (lambda: pyrnn.LSTM(INPUT, HIDDEN, num_layers=2, bidirectional=True, proj_size=12, seed=1), True),
    (lambda: pyrnn.GRU(INPUT, HIDDEN, num_layers=2, dropout=0.3, seed=2), False),
    (lambda: pyrnn.RNN(INPUT, HIDDEN, nonlinearity="relu", bias=False, seed=3), True),
    (lambda: pyrnn.LSTM(INPUT, HIDDEN, batch_first=True, dtype=np.float64, seed=4), False),
]


def inputs_for(model, rng, with_lengths):
    shape = (BATCH, STEPS, INPUT) if model.batch_first else (STEPS, BATCH, INPUT)
    x = rng.standard_normal(shape).astype(model.dtype)
    lengths = np.resize([STEPS, 0, 5, STEPS - 1], BATCH) if with_lengths else None
    return x, lengths


def train_step(model, x, lengths, dy=None):
    y, state, tape = model.forward(x, lengths=lengths)
    dy = np.ones_like(y) if dy is None else dy
    dx, dstate0, dparams = model.backward(tape, dy)
    states = lambda s: list(s) if isinstance(s, tuple) else [s]  # noqa: E731
    return [y, *states(state), dx, *states(dstate0), *dparams.values()]


@pytest.fixture
def restore_threads():
    previous = pyrnn.get_num_threads()
    yield
    pyrnn.set_num_threads(previous)


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- resident memory ---------------------------------------------------------------------------
ITERATIONS = 1000
WARMUP = 100
RSS_BOUND = 4 << 20   # bytes; leaking any call's input projection or tape adds >= 8 MiB (seen: < 0.3 MiB)


@pytest.mark.skipif(pyrnn.build_info()["sanitized"],
                    reason="ASan's quarantine holds freed memory: RSS grows by design")
def test_resident_memory_stays_flat_over_thousands_of_calls(restore_threads, rng):
    """Every iteration runs, for each config, an inference call and a training forward +
    backward (so each native entry point, every cell, lengths, dropout, projection, float64 and
    batch_first), and one call that fails argument checking."""
    pyrnn.set_num_threads(1)   # leaks do not depend on it, and a loaded machine makes forks slow
    work = []
    for make, with_lengths in CONFIGS:
        model = make()
        work.append((model, *inputs_for(model, rng, with_lengths)))

    def iteration():
        for model, x, lengths in work:
            model(x, lengths=lengths)
            train_step(model, x, lengths)
        try:
            work[0][0](work[0][1][:, :, :3])
        except ValueError:
            pass
        else:
            raise AssertionError("a wrong input size was accepted")

    for _ in range(WARMUP):
        iteration()
    gc.collect()
    before = resident_bytes()
    for _ in range(ITERATIONS):
        iteration()
    gc.collect()
    growth = resident_bytes() - before
    assert growth < RSS_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB over {ITERATIONS} iterations"


# -- workspace reuse ---------------------------------------------------------------------------
reuse_needs_plain_build = pytest.mark.skipif(
    pyrnn.build_info()["sanitized"], reason="ASan's quarantine holds freed memory back from reuse by design")


def minor_page_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def page_faults_per_training_step(model, x, dy, steps):
    """Minor page faults per forward + backward, over `steps` steps after 3 warm-up steps."""
    for _ in range(3):
        model.backward(model.forward(x)[2], dy)
    before = minor_page_faults()
    for _ in range(steps):
        model.backward(model.forward(x)[2], dy)
    return (minor_page_faults() - before) / steps


@reuse_needs_plain_build
def test_a_training_loop_reuses_its_workspace(restore_threads, rng):
    """The tape and workspaces of one step (here 6.6 MB: 1,600 pages) come back from the block
    cache in the next: without it, each forward + backward faulted in ~1,600 fresh pages."""
    pyrnn.set_num_threads(1)
    model = pyrnn.LSTM(128, 128, seed=5)
    x = rng.standard_normal((50, 32, 128)).astype(np.float32)
    dy = np.ones((50, 32, 128), np.float32)
    per_step = page_faults_per_training_step(model, x, dy, steps=10)
    assert per_step < 100, f"{per_step:.0f} page faults per training step"


@pytest.fixture
def small_pages_only():
    """Transparent huge pages off for this process while the test runs, so that a page fault is
    4 KiB whatever the machine's setting: with them, a fresh 50 MB block faults only ~25 times."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    set_thp_disable, get_thp_disable = 41, 42  # <linux/prctl.h>
    was_disabled = prctl(get_thp_disable, 0, 0, 0, 0)
    if prctl(set_thp_disable, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_THP_DISABLE) is not available")
    yield
    prctl(set_thp_disable, max(was_disabled, 0), 0, 0, 0)


@reuse_needs_plain_build
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's prctl")
def test_a_training_loop_reuses_a_workspace_larger_than_the_cache_floor(restore_threads, rng,
                                                                        small_pages_only):
    """A step whose tape (93 MB) and workspaces pass the cache's 64 MiB floor still gets them back
    (the cache may hold what pyrnn once had in use): with a fixed 64 MiB cap, each forward +
    backward faulted in ~22,000 fresh pages."""
    pyrnn.set_num_threads(1)
    model = pyrnn.LSTM(8, 64, seed=5)
    x = rng.standard_normal((200, 256, 8)).astype(np.float32)
    dy = np.ones((200, 256, 64), np.float32)
    tape_pages = model.forward(x)[2].nbytes / 4096
    per_step = page_faults_per_training_step(model, x, dy, steps=5)
    assert per_step < tape_pages / 20, f"{per_step:.0f} page faults per training step"


# -- a tape outlives its model -----------------------------------------------------------------
def test_a_tape_outlives_its_model(isa, rng):
    for make, with_lengths in CONFIGS:
        model = make()
        model.dropout = 0.0  # the reference forward below must see the same masks: none
        x, lengths = inputs_for(model, rng, with_lengths)
        weights = {k: v.copy() for k, v in model.state_dict().items()}
        expected = train_step(model, x, lengths)
        y, _, tape = model.forward(x, lengths=lengths)
        ref = weakref.ref(model)
        cls, kwargs = type(model), dict(num_layers=model.num_layers, bidirectional=model.bidirectional,
                                        batch_first=model.batch_first, dtype=model.dtype, bias=model.bias)
        if isinstance(model, pyrnn.LSTM):
            kwargs["proj_size"] = model.proj_size
        if isinstance(model, pyrnn.RNN):
            kwargs["nonlinearity"] = model.nonlinearity
        del model
        gc.collect()
        assert ref() is None, "the model is still alive"
        # Reuse the freed memory, then backpropagate through the orphaned tape with a model of
        # the same configuration but other weights: the tape's own weights must be used.
        other = cls(INPUT, HIDDEN, seed=99, **kwargs)
        for _ in range(3):
            train_step(other, x, lengths)
        dx, dstate0, dparams = other.backward(tape, np.ones_like(y))
        states = lambda s: list(s) if isinstance(s, tuple) else [s]  # noqa: E731
        got = [dx, *states(dstate0), *dparams.values()]
        n_forward = len(expected) - len(got)
        for i, (a, b) in enumerate(zip(got, expected[n_forward:])):
            np.testing.assert_array_equal(a, b, err_msg=f"{cls.__name__}: gradient {i}")
        # And they are the gradients of the original weights, not of `other`'s.
        other.load_state_dict(weights)
        np.testing.assert_array_equal(train_step(other, x, lengths)[n_forward], dx)


# -- weights replaced between forward and backward ---------------------------------------------
def test_load_state_dict_between_forward_and_backward_gives_the_old_weights_gradients(isa, rng):
    for make, with_lengths in CONFIGS:
        model = make()
        model.dropout = 0.0
        x, lengths = inputs_for(model, rng, with_lengths)
        old = {k: v.copy() for k, v in model.state_dict().items()}
        new = {k: rng.uniform(-0.3, 0.3, v.shape) for k, v in old.items()}
        y, state, tape = model.forward(x, lengths=lengths)
        dy = rng.standard_normal(y.shape).astype(model.dtype)
        model.load_state_dict(new)
        dx, dstate0, dparams = model.backward(tape, dy)

        states = lambda s: list(s) if isinstance(s, tuple) else [s]  # noqa: E731
        got = [dx, *states(dstate0), *dparams.values()]
        holder = type(model).__new__(type(model))
        holder.__dict__.update(model.__dict__)   # same configuration ...
        holder.load_state_dict(old)              # ... holding the old weights
        expected = train_step(holder, x, lengths, dy)
        n_forward = len(expected) - len(got)
        for i, (a, b) in enumerate(zip(got, expected[n_forward:])):
            np.testing.assert_array_equal(a, b, err_msg=f"{type(model).__name__}: gradient {i}")
        # The new weights give other gradients: the comparison above can fail.
        assert not np.array_equal(train_step(model, x, lengths, dy)[n_forward], dx)
