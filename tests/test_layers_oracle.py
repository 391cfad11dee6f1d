"""Native layers against the NumPy oracle (pyrnn.reference, float64) on the same weights and
inputs: outputs, final states, dx, dh0/dc0 and every parameter gradient, for every cell, both
dtypes and every ISA, over configurations named for what they probe. Weights and inputs are
float32 values, so the float32 and float64 models see exactly the same numbers.
"""
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import (CELLS, DTYPES, ORACLE_EXAMPLES, SEED, cell_legal, compare, f32_exact,
                     make_model, native_run, oracle_run, pack_state, random_lengths,
                     round_state_dict, state_shapes, y_shape)


@dataclass(frozen=True)
class Case:
    """A layer configuration and the call made with it."""
    name: str
    T: int = 5
    B: int = 3
    I: int = 4
    H: int = 7
    num_layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False
    lengths: bool = False
    unbatched: bool = False
    state: bool = True   # random initial state (else None: zeros)
    dstate: bool = True  # random gradient of the final state (else None)

    def __str__(self):
        return self.name


CASES = [
    Case("base"),
    Case("no_state_no_dstate", state=False, dstate=False),
    Case("state_only", dstate=False),
    Case("dstate_only", state=False),
    Case("nobias", bias=False),
    Case("h1", H=1),
    Case("i1", I=1),
    Case("b1", B=1),
    Case("t1", T=1),
    Case("all_ones", T=1, B=1, I=1, H=2),
    Case("odd_sizes", T=7, B=5, I=17, H=33),
    Case("h3_i33", T=4, B=2, I=33, H=3),
    Case("h_lt_8", H=7, I=9),
    Case("h_eq_8", H=8, I=8),
    Case("h_lt_16", H=15, I=5),
    Case("h_eq_16", H=16, I=16),
    Case("h_gt_16", H=17, I=3),
    Case("h_40_b5_t12", T=12, B=5, I=40, H=40),
    Case("b16_full_row_tiles", T=3, B=16, I=5, H=20),
    Case("h136_two_block_tiles", T=3, B=2, I=5, H=136),
    Case("layers2", num_layers=2),
    Case("layers3_nobias", num_layers=3, bias=False),
    Case("bidir", bidirectional=True),
    Case("bidir_layers2_odd", T=6, B=4, I=3, H=17, num_layers=2, bidirectional=True),
    Case("batch_first", B=4, batch_first=True),
    Case("batch_first_bidir_layers2", B=2, T=4, batch_first=True, bidirectional=True, num_layers=2),
    Case("unbatched", unbatched=True),
    Case("unbatched_bidir_layers2_nostate", unbatched=True, bidirectional=True, num_layers=2,
         state=False),
    Case("lengths", T=6, B=5, lengths=True),
    Case("lengths_bidir", T=6, B=5, lengths=True, bidirectional=True),
    Case("lengths_layers3_bidir_batch_first", T=5, B=4, H=9, lengths=True, num_layers=3,
         bidirectional=True, batch_first=True),
    Case("lengths_b1_full", T=4, B=1, lengths=True),
    Case("lengths_t1", T=1, B=4, lengths=True, bidirectional=True),
    Case("lengths_no_state", T=6, B=5, lengths=True, bidirectional=True, state=False,
         dstate=False),
]


def case_seed(*parts):
    return np.random.default_rng([SEED, zlib.crc32("/".join(map(str, parts)).encode())])


def problem(case, cell):
    """(state_dict, call keywords) for one case and cell, as float32-exact float64 arrays."""
    rng = case_seed(case, cell)
    model = make_model(cell, case.I, case.H, np.float64, seed=int(rng.integers(2**31)),
                       num_layers=case.num_layers, bidirectional=case.bidirectional,
                       bias=case.bias, batch_first=case.batch_first)
    round_state_dict(model)
    x_shape = (case.T, case.I) if case.unbatched else (
        (case.B, case.T, case.I) if case.batch_first else (case.T, case.B, case.I))
    h_shape, c_shape = state_shapes(model, case.B, case.unbatched)
    random_state = lambda: pack_state(model, f32_exact(rng, h_shape),  # noqa: E731
                                      None if c_shape is None else f32_exact(rng, c_shape))
    call = dict(x=f32_exact(rng, x_shape),
                state=random_state() if case.state else None,
                lengths=random_lengths(rng, case.B, case.T) if case.lengths else None,
                dy=f32_exact(rng, y_shape(model, case.T, case.B, case.unbatched)),
                dstate=random_state() if case.dstate else None)
    return model.state_dict(), call


@lru_cache(maxsize=None)
def expected_of(case, cell):
    """(state_dict, call, oracle results): computed once, shared by every dtype and ISA."""
    params, call = problem(case, cell)
    model = layer_of(case, cell, np.float64, params)
    return params, call, oracle_run(model, **call)


def layer_of(case, cell, dtype, params):
    model = make_model(cell, case.I, case.H, dtype, num_layers=case.num_layers,
                       bidirectional=case.bidirectional, bias=case.bias,
                       batch_first=case.batch_first)
    model.load_state_dict(params)
    return model


def as_dtype(value, dtype):
    if value is None or isinstance(value, np.ndarray) and value.dtype.kind == "i":
        return value
    if isinstance(value, tuple):
        return tuple(as_dtype(v, dtype) for v in value)
    return value.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_native_matches_oracle(case, cell, dtype, isa):
    if not cell_legal(cell, case.H):
        pytest.skip("a projection needs hidden_size >= 2")
    params, call, expected = expected_of(case, cell)
    model = layer_of(case, cell, dtype, params)  # packed for `isa`
    actual = native_run(model, **{k: as_dtype(v, dtype) for k, v in call.items()})
    compare(actual, expected, dtype, "oracle", cell)


def test_cases_have_distinct_names():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


# Random configurations: sizes around the SIMD widths and 1, every topology and option.
SIZES = st.sampled_from([1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33])


@st.composite
def configs(draw):
    hidden = draw(SIZES)
    cell = draw(st.sampled_from([c for c in CELLS if cell_legal(c, hidden)]))
    unbatched = draw(st.booleans())
    return dict(
        cell=cell, H=hidden, I=draw(SIZES), T=draw(st.integers(1, 8)),
        B=1 if unbatched else draw(st.integers(1, 5)),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()), batch_first=draw(st.booleans()), unbatched=unbatched,
        lengths=not unbatched and draw(st.booleans()), state=draw(st.booleans()),
        dstate=draw(st.booleans()), dtype=draw(st.sampled_from(list(DTYPES.values()))),
        seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=ORACLE_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs())
def test_random_configs_match_oracle(config, isa):
    config = dict(config)
    cell, dtype, seed = config.pop("cell"), config.pop("dtype"), config.pop("seed")
    case = Case(f"random{seed}", **config)
    params, call = problem(case, cell)
    expected = oracle_run(layer_of(case, cell, np.float64, params), **call)
    actual = native_run(layer_of(case, cell, dtype, params),
                        **{k: as_dtype(v, dtype) for k, v in call.items()})
    compare(actual, expected, dtype, "oracle", cell)
