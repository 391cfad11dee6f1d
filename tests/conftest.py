"""pytest fixtures shared by pyrnn's tests (tolerances and seeds are in helpers.py)."""
import zlib

import numpy as np
import pytest

from helpers import ERROR_LOG, ISAS, SEED


@pytest.fixture
def rng(request):
    """A generator seeded from SEED and the test's id: reproducible whatever runs before."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with layers packed for each ISA in turn (skipped where this CPU lacks it);
    the previously active ISA is restored afterwards."""
    import pyrnn

    if request.param not in pyrnn.available_isas():
        pytest.skip(f"this CPU has no {request.param}")
    previous = pyrnn.active_isa()
    pyrnn._core.select_isa(request.param)
    try:
        yield request.param
    finally:
        pyrnn._core.select_isa(previous)


def pytest_terminal_summary(terminalreporter):
    """The worst relative errors the oracle and torch comparisons measured (helpers.compare)."""
    if not ERROR_LOG:
        return
    terminalreporter.section("worst relative errors (native vs reference)")
    for (suite, cell, dtype), errors in sorted(ERROR_LOG.items()):
        text = "  ".join(f"{name}={err:.1e}" for name, err in sorted(errors.items()))
        terminalreporter.write_line(f"{suite:<8} {cell:<10} {dtype:<8} {text}")
