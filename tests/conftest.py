"""pytest fixtures shared by pyrnn's tests (tolerances and seeds are in helpers.py)."""
import zlib

import numpy as np
import pytest

from helpers import SEED


@pytest.fixture
def rng(request):
    """A generator seeded from SEED and the test's id: reproducible whatever runs before."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])
