"""pytest-benchmark suite: one benchmark per case of pyrnn.bench.CASES and implementation
(pyrnn, torch, torch_cell for streaming, onnxruntime, reference), grouped by case.

Before a peer is timed its outputs are checked against pyrnn's, and pyrnn's against the
float64 oracle, as the runner does (pyrnn.bench.check_*). One sample is one call (streaming:
STREAM_STEPS steps). Select with -k (e.g. -k "lstm_latency") or -m quick.
"""
import functools

import pytest

import pyrnn
from pyrnn import bench


@functools.lru_cache(maxsize=1)
def _prepared(case):
    """The case's workload, pyrnn's checked results and the oracle's time (the last case only:
    parametrisation keeps a case's implementations together)."""
    workload = bench.Workload(case)
    impl = bench.make_impls("pyrnn", workload, threads=1)[0]
    mine = impl.results(impl.run())
    oracle_s, oracle = bench.timed_call(lambda: bench.oracle_results(workload))
    bench.check_against_oracle(case, mine, oracle)
    return workload, mine, oracle_s


def _params():
    for case in bench.CASES:
        marks = [pytest.mark.quick] if case.quick else []
        for variant in bench.variants(case):
            yield pytest.param(case, variant, id=f"{case.name}-{variant}", marks=marks)


@pytest.mark.parametrize("case, variant", list(_params()))
def test_layer(benchmark, threads, case, variant):
    peer = bench.VARIANTS[variant]
    if peer != "pyrnn" and peer not in bench.available_peers():
        pytest.skip(f"{peer} is not installed")
    workload, mine, oracle_s = _prepared(case)
    if peer == "reference" and oracle_s > 2 * bench.REFERENCE_MAX_S:
        pytest.skip(f"the oracle takes > {bench.REFERENCE_MAX_S:g} s per call here")
    impl = next(i for i in bench.make_impls(peer, workload, threads) if i.name == variant)
    if peer != "pyrnn":
        bench.check_peer(case, variant, impl.results(impl.run()), mine)

    benchmark.group = case.name
    benchmark.extra_info.update(
        cell=case.cell, kind=case.kind, shape=case.shape, threads=threads,
        isa=pyrnn.active_isa(), flops_per_call=case.flops * (
            bench.STREAM_STEPS if case.kind == "streaming" else 1))
    benchmark(impl.run)
