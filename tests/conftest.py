"""pytest fixtures shared by pyrnn's tests (tolerances and seeds are in helpers.py)."""
import zlib

import numpy as np
import pytest

from helpers import SEED

# Every ISA the native module may be compiled for, in the registry's priority order.
ISAS = ("avx512", "avx2", "generic")


@pytest.fixture
def rng(request):
    """A generator seeded from SEED and the test's id: reproducible whatever runs before."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test once per ISA: layers created inside the test are packed for, and run, that
    ISA's kernels. ISAs this CPU lacks are skipped, not failed. Restores the previous ISA."""
    import pyrnn

    name = request.param
    if name not in pyrnn.available_isas():
        pytest.skip(f"this CPU does not support {name}")
    previous = pyrnn.active_isa()
    pyrnn._core.select_isa(name)
    yield name
    pyrnn._core.select_isa(previous)
